#!/usr/bin/env bash
# Downloads the public corpora heed's configs use into DATA_DIR (default ./data), in their
# official layouts. Usage: scripts/get_data.sh [imdb|bbc|cnndm] [DATA_DIR]
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
  bbc)
    if [[ -d "$dir/bbc-news-summary/News Articles" ]]; then echo "BBC News Summary already in $dir/bbc-news-summary"; exit 0; fi
    cat >&2 <<EOT
BBC News Summary (CC0) is distributed through Kaggle, which needs a login:
  https://www.kaggle.com/datasets/pariza/bbc-news-summary
Download and unzip it so that these folders exist:
  $dir/bbc-news-summary/News Articles/<topic>/NNN.txt
  $dir/bbc-news-summary/Summaries/<topic>/NNN.txt
(with the Kaggle CLI: kaggle datasets download -d pariza/bbc-news-summary -p "$dir" --unzip,
then move the inner "BBC News Summary" folder to $dir/bbc-news-summary)
EOT
    exit 1
    ;;
  cnndm)
    if [[ -d "$dir/cnn_dailymail/stories" ]]; then echo "CNN/DailyMail already in $dir/cnn_dailymail/stories"; exit 0; fi
    cat >&2 <<EOT
CNN/DailyMail stories are distributed by their authors at https://cs.nyu.edu/~kcho/DMQA/
(cnn_stories.tgz and dailymail_stories.tgz, Google Drive links). Download both and extract the
.story files into one folder:
  mkdir -p "$dir/cnn_dailymail/stories"
  tar -xzf cnn_stories.tgz --strip-components=2 -C "$dir/cnn_dailymail/stories"
  tar -xzf dailymail_stories.tgz --strip-components=2 -C "$dir/cnn_dailymail/stories"
configs/cnndm_summarizer.json reads {data_dir}/cnn_dailymail/stories (format cnndm_stories); the
JSON-lines release (article/highlights/id) works with data.format "cnndm_jsonl".
EOT
    exit 1
    ;;
  *) echo "usage: $0 [imdb|bbc|cnndm] [DATA_DIR]" >&2; exit 2 ;;
esac
