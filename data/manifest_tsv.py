"""Write data/fixtures/manifest.tsv from manifest.json for the C tests.

Columns: name, native_expected (0/1), malformed (0/1).  C has no JSON
parser in this project, and does not need one for three columns.
"""
import json
import pathlib
import sys

out_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "data/fixtures")
entries = json.loads((out_dir / "manifest.json").read_text())
if isinstance(entries, dict):
    entries = entries.get("fixtures", entries.get("files", []))
lines = ["# name\tnative_expected\tmalformed"]
for e in entries:
    lines.append(f"{e['path']}\t{int(bool(e.get('native_expected')))}\t{int(bool(e.get('malformed')))}")
(out_dir / "manifest.tsv").write_text("\n".join(lines) + "\n")
print(f"manifest.tsv: {len(entries)} fixtures")
