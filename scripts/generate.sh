#!/usr/bin/env bash
# Regenerates the committed gRPC code from every .proto under plugins/proto.
set -euo pipefail
cd "$(dirname "$0")/.."
protos=$(find plugins/proto -name '*.proto' 2>/dev/null | sort)
if [ -z "$protos" ]; then echo "no .proto files under plugins/proto"; exit 0; fi
protoc --proto_path=plugins/proto \
	--go_out=plugins/proto --go_opt=paths=source_relative \
	--go-grpc_out=plugins/proto --go-grpc_opt=paths=source_relative \
	$protos
echo "generated: $protos"
