# Shared by scripts/demo and scripts/test: find Python 3.12+, make .venv, install Quebec into it.
# Source it; it leaves $PYTHON pointing at the virtualenv's interpreter.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QUEBEC_VENV:-$ROOT/.venv}"

python_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
}

find_python() {
    local candidate version prefix
    for candidate in "${QUEBEC_PYTHON:-}" python3.13 python3.12 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"
            return
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])' | sort -rV); do
            prefix="$(pyenv prefix "$version" 2>/dev/null)" || continue
            if python_ok "$prefix/bin/python3"; then
                echo "$prefix/bin/python3"
                return
            fi
        done
    fi
    echo "error: Quebec needs Python 3.12 or newer (Django 6 does), and none was found:" >&2
    echo "       tried \$QUEBEC_PYTHON, python3.13, python3.12, python3 on PATH, and pyenv." >&2
    echo "       Install one (e.g. 'pyenv install 3.12') or set QUEBEC_PYTHON=/path/to/python3.12." >&2
    return 1
}

setup_venv() {
    local base stamp want
    if [ ! -x "$VENV/bin/python" ] || ! python_ok "$VENV/bin/python"; then
        base="$(find_python)" || exit 1
        echo "==> Creating $VENV with $("$base" --version)"
        rm -rf "$VENV"
        "$base" -m venv "$VENV"
    fi
    PYTHON="$VENV/bin/python"
    stamp="$VENV/.quebec-installed"
    want="$(cat "$ROOT/pyproject.toml" | cksum)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "==> Installing Quebec and its test tools into $VENV"
        "$PYTHON" -m pip install --quiet --upgrade pip
        "$PYTHON" -m pip install --quiet -e "$ROOT[test,postgres]"
        echo "$want" > "$stamp"
    fi
    # Tried again on every run until it builds: the headers may have been installed since.
    if ! "$PYTHON" -c "import MySQLdb" 2>/dev/null && ! "$PYTHON" -m pip install --quiet "mysqlclient>=2.2.1"; then
        echo "warning: mysqlclient did not build, so MySQL/MariaDB cannot be used." >&2
        echo "         It needs the MariaDB client headers: apt-get install libmariadb-dev pkg-config" >&2
    fi
}
