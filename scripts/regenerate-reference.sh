#!/usr/bin/env bash
# Rewrites the generated builtins section of docs/LANGUAGE.md from `metaq reference` (the
# tables the language validates with); the test suite fails while the file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
metaq=${1:-.build/debug/metaq}
"$metaq" reference > "${TMPDIR:-/tmp}/metaq-reference.md"
python3 - "${TMPDIR:-/tmp}/metaq-reference.md" <<'PY'
import sys
path = "docs/LANGUAGE.md"
text = open(path).read()
generated = open(sys.argv[1]).read()
begin = text.index("<!-- BEGIN GENERATED BUILTINS")
end = text.index("\n", text.index("<!-- END GENERATED BUILTINS")) + 1
open(path, "w").write(text[:begin] + generated + text[end:])
PY
