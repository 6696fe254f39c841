#!/usr/bin/env bash
# Install llama-cpp-python built for any x86-64 CPU with AVX2, never for "this" CPU.
#
# Why: llama.cpp's default build is GGML_NATIVE=ON (-march=native). On machines whose CPU
# advertises AMX or AVX-512 that a virtual machine does not actually allow, the native build
# dies with a general protection fault (ldtilecfg) on the first chat request. GGML_NATIVE=OFF
# is the flag that matters: with it ggml turns on SSE4.2/AVX/AVX2/FMA/F16C/BMI2 and leaves
# AVX-512 and AMX off (their options default to OFF). pip caches wheels it built from a source
# archive by the archive's hash alone, not by CMAKE_ARGS, so a wheel built natively earlier
# would be reused: we build with --no-cache-dir into our own folder keyed by version and flags,
# check the library holds no AMX/AVX-512 instruction, and install from there.
#
# usage: tools/install_llama_portable.sh PYTHON
set -euo pipefail
py=${1:?usage: install_llama_portable.sh PYTHON}
version=0.3.36
cmake_args="-DGGML_NATIVE=OFF"
key=$(printf '%s %s' "$version" "$cmake_args" | sha1sum | cut -c1-10)
cache=${ALLIANCE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alliance/wheels}/llama-cpp-python-$key

installed=$("$py" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null || true)
marker=$("$py" -c 'import llama_cpp, pathlib; print(pathlib.Path(llama_cpp.__file__).parent / ".alliance-portable")' 2>/dev/null || true)
if [ "$installed" = "$version" ] && [ -n "$marker" ] && [ "$(cat "$marker" 2>/dev/null)" = "$key" ]; then
  exit 0
fi

if ! ls "$cache"/llama_cpp_python-"$version"-*.whl >/dev/null 2>&1; then
  echo "Building llama-cpp-python $version portably ($cmake_args); 6-12 min on 2 cores, once per machine"
  tmp=$(mktemp -d)
  CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$py" -m pip wheel --quiet --no-cache-dir --no-deps -w "$tmp" "llama-cpp-python==$version"
  mkdir -p "$cache"
  mv "$tmp"/llama_cpp_python-*.whl "$cache"/
  rm -rf "$tmp"
fi
"$py" -m pip install --quiet --force-reinstall --no-deps "$cache"/llama_cpp_python-"$version"-*.whl
# The server extra's own dependencies (uvicorn, fastapi, sse-starlette, ...).
"$py" -m pip install --quiet "llama-cpp-python[server]==$version"

lib_dir=$("$py" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("llama_cpp"); print(pathlib.Path(s.origin).parent / "lib")')
if command -v objdump >/dev/null 2>&1; then
  bad=$(objdump -d "$lib_dir"/libggml-cpu*.so 2>/dev/null | grep -cE '\b(ldtilecfg|tdpb[a-z]+|tileloadd)\b|%zmm' || true)
  if [ "$bad" != "0" ]; then
    echo "llama.cpp library holds $bad AMX/AVX-512 instructions: not a portable build" >&2
    exit 1
  fi
fi
printf '%s' "$key" > "$("$py" -c 'import llama_cpp, pathlib; print(pathlib.Path(llama_cpp.__file__).parent)')/.alliance-portable"
echo "llama-cpp-python $version: portable build ($cmake_args) installed"
