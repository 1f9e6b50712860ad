#!/bin/sh
# Rebuild api/viewer/static/vendor from the pinned npm packages (package-lock.json):
#   sh api/viewer/vendor-src/rebuild.sh
# Installs into a temporary folder (no node_modules in the tree), then copies the packages'
# published minified builds and their licenses. Needs npm and the npm registry; the viewer
# itself never touches the network.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
mods="$work/node_modules"
mkdir -p "$out"
cp "$mods/cytoscape/dist/cytoscape.min.js" "$out/cytoscape.min.js"
cp "$mods/cytoscape/LICENSE" "$out/cytoscape.LICENSE.txt"
# cytoscape-dagre's build bundles @dagrejs/dagre and @dagrejs/graphlib (both MIT)
cp "$mods/cytoscape-dagre/dist/cytoscape-dagre.min.js" "$out/cytoscape-dagre.min.js"
cp "$mods/cytoscape-dagre/LICENSE" "$out/cytoscape-dagre.LICENSE.txt"
cp "$mods/@dagrejs/dagre/LICENSE" "$out/dagre.LICENSE.txt"
cp "$mods/@dagrejs/graphlib/LICENSE" "$out/graphlib.LICENSE.txt"
(cd "$out" && sha256sum cytoscape.min.js cytoscape-dagre.min.js > SHA256SUMS.txt)
echo "rebuilt $out:"
ls -l "$out"
