/* placeholder: replaced by the pool/DLPack work (issue 4) */
#include "internal.h"
