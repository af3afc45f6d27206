#!/usr/bin/env bash
# Kubeflow access for deploy: a kube config from a secret, and/or the OAuth client id of an
# Identity-Aware Proxy in front of the KFP host (kfp.Client then signs in with the Google
# credentials of the workload identity login). The host itself is the profile's kubeflow.host.
set -euo pipefail
if [ -n "${MLCOMPILE_KUBECONFIG:-}" ]; then
  config="${RUNNER_TEMP:?}/mlcompile-kubeconfig"
  (umask 077 && printf '%s\n' "$MLCOMPILE_KUBECONFIG" > "$config")
  echo "KUBECONFIG=$config" >> "${GITHUB_ENV:?}"
fi
if [ -n "${MLCOMPILE_KFP_IAP_CLIENT_ID:-}" ]; then
  case "$MLCOMPILE_KFP_IAP_CLIENT_ID" in
    *[!A-Za-z0-9._-]*) echo "::error title=mlcompile::kfp-iap-client-id is not an OAuth client id"; exit 2 ;;
  esac
  echo "KF_PIPELINES_IAP_OAUTH2_CLIENT_ID=$MLCOMPILE_KFP_IAP_CLIENT_ID" >> "${GITHUB_ENV:?}"
fi
