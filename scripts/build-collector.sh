#!/usr/bin/env bash
# Build build/otelcol-mailscope, mailscope's Collector distribution, from
# otel-config/collector/builder-config.yaml with the OpenTelemetry Collector Builder.
#
#   scripts/build-collector.sh            build with the pinned go.mod/go.sum (resolves nothing new)
#   scripts/build-collector.sh --update   after a change of builder-config.yaml: let the builder
#                                         resolve the modules, and write go.mod/go.sum back beside it
#
# Used by the Makefile (`make build/otelcol-mailscope`) and by docker/Dockerfile.collector.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

BUILDER_VERSION=v0.161.0 # the Collector release of every module in builder-config.yaml
CONFIG=otel-config/collector/builder-config.yaml
PINNED=otel-config/collector
SRC=build/otelcol-src
TOOLS="$PWD/build/tools"
BUILDER="$TOOLS/builder-$BUILDER_VERSION"

mkdir -p build "$TOOLS"
if [ ! -x "$BUILDER" ]; then
  GOBIN="$TOOLS" go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
  mv "$TOOLS/builder" "$BUILDER"
fi

rm -rf "$SRC"
if [ "${1:-}" = "--update" ]; then
  # generate and resolve (go mod tidy inside the builder), then keep the result
  "$BUILDER" --config "$CONFIG" --skip-compilation
  cp "$SRC/go.mod" "$SRC/go.sum" "$PINNED/"
  echo "updated $PINNED/go.mod and go.sum: commit them"
else
  # generate the sources only, then build them against the pinned module graph
  "$BUILDER" --config "$CONFIG" --skip-get-modules --skip-compilation
  cp "$PINNED/go.mod" "$PINNED/go.sum" "$SRC/"
fi

(cd "$SRC" && go build -mod=readonly -trimpath -ldflags="-s -w" -o ../otelcol-mailscope .)
touch build/otelcol-mailscope # go build leaves an up-to-date binary alone; make compares times
echo "built build/otelcol-mailscope"
