# Shared by scripts/demo and scripts/test: find Python 3.12+, make a virtualenv, install Quebec
# and its test tools into it. Source it; setup_venv leaves $PYTHON pointing at the virtualenv's
# interpreter.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QUEBEC_VENV:-$ROOT/.venv}"
# The Python versions Quebec supports and scripts/test runs the suite on.
SUPPORTED_PYTHONS=(3.13 3.12)

python_ok() {  # PYTHON [X.Y] -> does it run, and is it 3.12+ (or exactly X.Y)?
    if [ -n "${2:-}" ]; then
        "$1" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$2')" >/dev/null 2>&1
    else
        "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
    fi
}

python_version() {  # PYTHON -> X.Y
    "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# Python X.Y (any supported version if none is given): python3.13, python3.12, python3 on PATH,
# then pyenv's installed versions. A pyenv shim on PATH runs only the version pyenv selects, so
# it fails python_ok for the others, and `pyenv prefix` finds them instead.
find_python() {
    local want="${1:-}" candidate candidates version prefix
    if [ -n "$want" ]; then
        candidates=("python$want")
    else
        candidates=("${QUEBEC_PYTHON:-}" "${SUPPORTED_PYTHONS[@]/#/python}" python3)
    fi
    for candidate in "${candidates[@]}"; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate" "$want"; then
            command -v "$candidate"
            return
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])\.[0-9]+$' | sort -rV); do
            prefix="$(pyenv prefix "$version" 2>/dev/null)" || continue
            if python_ok "$prefix/bin/python3" "$want"; then
                echo "$prefix/bin/python3"
                return
            fi
        done
    fi
    return 1
}

# setup_venv [X.Y]: the default virtualenv ($VENV, .venv) with the newest Python found, or
# .venv-X.Y with Python X.Y.
setup_venv() {
    local want="${1:-}" venv base stamp wanted
    venv="$VENV"
    [ -z "$want" ] || venv="$ROOT/.venv-$want"
    if [ ! -x "$venv/bin/python" ] || ! python_ok "$venv/bin/python" "$want"; then
        if ! base="$(find_python "$want")"; then
            if [ -n "$want" ]; then
                echo "Python $want was not found: tried python$want on PATH, and pyenv ('pyenv install $want')." >&2
            else
                echo "error: Quebec needs Python 3.12 or newer (Django 6 does), and none was found:" >&2
                echo "       tried \$QUEBEC_PYTHON, python3.13, python3.12, python3 on PATH, and pyenv." >&2
                echo "       Install one (e.g. 'pyenv install 3.12') or set QUEBEC_PYTHON=/path/to/python3.12." >&2
            fi
            return 1
        fi
        echo "==> Creating $venv with $("$base" --version)"
        rm -rf "$venv"
        "$base" -m venv "$venv"
    fi
    PYTHON="$venv/bin/python"
    stamp="$venv/.quebec-installed"
    wanted="$(cat "$ROOT/pyproject.toml" | cksum)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        echo "==> Installing Quebec and its test tools into $venv"
        # pip 25.1 is the first to install a PEP 735 dependency group (--group).
        "$PYTHON" -m pip install --quiet --upgrade "pip>=25.1"
        "$PYTHON" -m pip install --quiet -e "$ROOT[postgres,standalone,otel]" --group "$ROOT/pyproject.toml:test"
        echo "$wanted" > "$stamp"
    fi
    # Tried again on every run until it builds: the headers may have been installed since.
    if ! "$PYTHON" -c "import MySQLdb" 2>/dev/null && ! "$PYTHON" -m pip install --quiet "mysqlclient>=2.2.1"; then
        echo "warning: mysqlclient did not build, so MySQL/MariaDB cannot be used." >&2
        echo "         It needs the MariaDB client headers: apt-get install libmariadb-dev pkg-config" >&2
    fi
}
