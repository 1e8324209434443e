#!/usr/bin/env bash
# Re-render every Graphviz source in this folder: part-NN-<name>.dot → part-NN-<name>.svg.
#
#   notebooks/diagrams/render.sh            # all diagrams
#   notebooks/diagrams/render.sh part-03-*  # some of them (names or globs, relative to here)
#
# Needs Graphviz (`apt-get install graphviz`, `brew install graphviz`). The SVGs are committed:
# the site and JupyterLab show them without Graphviz. Comments (the generator's version line
# and graphviz's per-node comments) are stripped so that re-rendering on the same Graphviz and
# fonts gives byte-identical files. Layout depends on the fonts installed, so re-render only
# the diagrams whose .dot you changed, and review the SVG in a browser before committing.
set -euo pipefail
cd "$(dirname "$0")"
command -v dot >/dev/null || { echo "render.sh: Graphviz 'dot' not found" >&2; exit 1; }

if [ "$#" -eq 0 ]; then set -- part-*.dot; fi
for source in "$@"; do
  source="${source%.svg}"; source="${source%.dot}.dot"
  target="${source%.dot}.svg"
  dot -Tsvg "$source" \
    | perl -0pe 's/<!--.*?-->\n?//gs; s/\n\n+/\n/g' > "$target.tmp"
  mv "$target.tmp" "$target"
  width=$(grep -o 'width="[0-9.]*pt"' "$target" | head -1 | tr -dc '0-9.')
  echo "✎ $target (${width} pt wide)"
done
