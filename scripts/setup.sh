#!/usr/bin/env bash
# Installs every Debian package heed needs (idempotent; sudo when not root) and builds Release
# into build/. Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev                      # LibTorch 1.13 (CPU)
  libgloo-dev                       # Gloo headers for c10d's ProcessGroupGloo (data-parallel training)
  libopenblas0-openmp               # fast BLAS for libtorch (the reference BLAS is ~15x slower)
  libblas-dev                       # cblas.h for model/linear.cpp's matrix-vector products
  libdnnl-dev                       # oneDNN's sgemm for the torch-free classifier engine (model/native/gemm.h)
  libtcmalloc-minimal4              # heed's malloc (CMakeLists.txt, HEED_ALLOCATOR): 2.7x less memory than glibc's, faster
  libsentencepiece-dev sentencepiece
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libstemmer-dev                    # Snowball Porter stemmer for ROUGE
  zlib1g-dev                        # CRC-32 of torch archives before loading (data_pipeline/base/archive_check.*)
  libxxhash-dev                     # XXH3 checksums of weight files
  libgtest-dev libbenchmark-dev
  python3-torch python3-sentencepiece  # interop tests and the benchmark reference
  chromium chromium-driver python3-selenium  # browser tests of the attention page (tests/browser/)
  clang-14 libclang-rt-14-dev libomp-14-dev  # scripts/test.sh --sanitize (ASan + UBSan), scripts/fuzz.sh (libFuzzer)
  libcpp-httplib-dev libssl-dev libbrotli-dev  # heed serve's HTTP server (cpp-httplib 0.11, built with OpenSSL, zlib, brotli)
  chromium chromium-driver python3-selenium    # the real-browser test of heed serve's page (tests/browser/)
)

missing=()
for p in "${PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# libtorch must call OpenBLAS, not the reference BLAS.
blas=$(readlink -f "$(ldconfig -p | awk '/libblas.so.3 \(/{print $NF; exit}')" || true)
case "$blas" in
  *openblas*) ;;
  *) echo "setup: warning: libblas.so.3 resolves to '$blas', not OpenBLAS; matrix products will be slow." >&2
     echo "       fix: sudo update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2 ;;
esac

if [[ "${1:-}" != "--no-build" ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  cmake --build build
  echo "setup: built build/heed"
fi
