#!/usr/bin/env bash
# Build build/jaeger, Jaeger v2 (github.com/jaegertracing/jaeger cmd/jaeger), from the wrapper
# module otel-config/jaeger (go.mod/go.sum pin every module). `go install ...@version` refuses
# Jaeger because its go.mod has a replace directive; the wrapper requires it as a tool and carries
# that replace.
#
#   scripts/build-jaeger.sh
#   to move to another release: cd otel-config/jaeger && go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@vX.Y.Z
#   (and copy the replace directives of that release's go.mod)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

mkdir -p build
(cd otel-config/jaeger && go build -mod=readonly -trimpath -ldflags="-s -w" -o ../../build/jaeger github.com/jaegertracing/jaeger/cmd/jaeger)
touch build/jaeger
echo "built build/jaeger"
