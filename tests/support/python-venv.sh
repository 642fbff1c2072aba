# Sourced by the suites and benchmarks that run Python: `python_venv DIR REQUIREMENTS` makes the
# virtual environment DIR if it is missing and installs the pinned REQUIREMENTS into it.
python_venv() {
  if [ ! -x "$1/bin/python" ]; then
    python3 -m venv "$1"
  fi
  "$1/bin/pip" install -q --disable-pip-version-check -r "$2"
}
