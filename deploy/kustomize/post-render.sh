#!/bin/sh
# Helm post-renderer: Helm's rendered manifests on standard input, patched ones on standard output.
# Needs kubectl (for its built-in kustomize) on PATH.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/barycenter.yaml"
cp "$HELM_PLUGIN_DIR/kustomization.yaml" "$HELM_PLUGIN_DIR/user-sync-patch.yaml" "$work/"
kubectl kustomize "$work"
