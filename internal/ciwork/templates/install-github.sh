go install "github.com/groundzero/groundzero/cmd/groundzero@${GROUNDZERO_VERSION}"
echo "$(go env GOPATH)/bin" >>"$GITHUB_PATH"
if [ -n "${GROUNDZERO_TOFU_VERSION:-}" ]; then
  # OpenTofu is built from its Go module (checked against the Go checksum
  # database); go install refuses it for its replace directives.
  dir=$(go mod download -json "github.com/opentofu/opentofu@${GROUNDZERO_TOFU_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  work=$(mktemp -d)
  cp -R "$dir/." "$work/"
  chmod -R u+w "$work"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$RUNNER_TEMP/tofu" ./cmd/tofu)
  echo "GROUNDZERO_TF_BINARY=$RUNNER_TEMP/tofu" >>"$GITHUB_ENV"
fi
