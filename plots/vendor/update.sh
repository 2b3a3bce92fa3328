#!/bin/sh
# Rebuild plots/offline_template.html, the page `dvc plots show` fills in
# (.dvc/config: plots.html_template), with vega, vega-lite and vega-embed inlined
# from their npm packages, so that the plots render with no network. DVC's own
# template loads them from a CDN. Versions: the VERSIONS line; run from the repo root.
set -eu
VERSIONS="vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent $VERSIONS >/dev/null)
for tgz in "$work"/*.tgz; do
    name=$(basename "$tgz" .tgz)
    mkdir "$work/$name" && tar xzf "$tgz" -C "$work/$name"
done
for lib in vega-lite vega-embed; do
    cp "$work"/$lib-[0-9]*/package/LICENSE "plots/vendor/LICENSE.$lib"
done
out=plots/offline_template.html
{
    printf '<!DOCTYPE html>\n<html>\n<head>\n    {refresh_tag}\n    <title>DVC Plot</title>\n'
    printf '    <!-- %s, inlined (plots/vendor/update.sh; licenses in plots/vendor/) -->\n' "$VERSIONS"
    for lib in vega vega-lite vega-embed; do
        printf '    <script>\n'
        # The source map comment points at a file the page does not ship.
        grep -v "^//# sourceMappingURL=" "$work"/$lib-[0-9]*/package/build/$lib.min.js
        printf '\n    </script>\n'
    done
    printf '    <style>\n        table { border-spacing: 15px; }\n    </style>\n</head>\n<body>\n    {plot_divs}\n</body>\n</html>\n'
} > "$out.tmp"
# A closing script tag inside the code would end the inline script early.
if grep -q '</script' "$work"/*/package/build/*.min.js; then echo "a bundle contains </script>" >&2; exit 1; fi
mv "$out.tmp" "$out"
echo "wrote $out"
