#!/usr/bin/env bash
# Downloads the public corpora heed's configs use into DATA_DIR (default ./data), in their
# official layouts. Usage: scripts/get_data.sh [imdb] [DATA_DIR]
set -euo pipefail
what=${1:-imdb}
dir=${2:-${HEED_DATA_DIR:-data}}
mkdir -p "$dir"
case "$what" in
  imdb)
    if [[ -d "$dir/aclImdb/train/pos" ]]; then echo "IMDB already in $dir/aclImdb"; exit 0; fi
    url=https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz
    echo "downloading $url (84 MB) into $dir"
    curl -fL --retry 3 "$url" -o "$dir/aclImdb_v1.tar.gz"
    tar -xzf "$dir/aclImdb_v1.tar.gz" -C "$dir"
    rm "$dir/aclImdb_v1.tar.gz"
    echo "IMDB ready: $dir/aclImdb/{train,test}"
    ;;
  *) echo "usage: $0 [imdb] [DATA_DIR]" >&2; exit 2 ;;
esac
