#!/usr/bin/env bash
# Point the DVC pipeline at PNEUMO_DATASET and PNEUMO_CONFIG (train.yml, both GPU routes):
# writes pipeline.yaml (dataset, fetch command) and, for another config, copies it to params.yaml.
set -euo pipefail
case "${PNEUMO_DATASET:?PNEUMO_DATASET is not set}" in
  synthetic) fetch="synthetic --name synthetic -c params.yaml --quiet" ;;
  nih | kermany) fetch="${PNEUMO_DATASET} --name ${PNEUMO_DATASET}" ;;
  *)
    echo "::error::unknown dataset '${PNEUMO_DATASET}' (synthetic, nih or kermany)" >&2
    exit 2
    ;;
esac
printf 'dataset: %s\nfetch: %s\n' "$PNEUMO_DATASET" "$fetch" > pipeline.yaml
config="${PNEUMO_CONFIG:-params.yaml}"
if [[ "$config" != "params.yaml" ]]; then
  [[ -f "$config" ]] || { echo "::error::config '$config' not found" >&2; exit 2; }
  cp "$config" params.yaml
fi
if ! dvc remote default > /dev/null 2>&1; then
  echo "::error::no default DVC remote: run 'dvc remote add -d store s3://BUCKET/pneumo' and commit .dvc/config" >&2
  exit 2
fi
echo "pipeline: dataset ${PNEUMO_DATASET}, config ${config}"
