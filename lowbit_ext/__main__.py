"""``python -m lowbit_ext <command>``: command-line tools.

    python -m lowbit_ext advise [--model llama3-8b] [--shapes NxK,...] [--formats a,b] ...

Commands: advise (which format per regime: :mod:`lowbit_ext.advise`).
"""
import sys

COMMANDS = {"advise": "which format for a model: accuracy, speed on a GPU, a recommendation per regime"}


def _usage() -> str:
    lines = ["usage: python -m lowbit_ext <command> [options]", "", "commands:"]
    lines += [f"  {name:10s} {what}" for name, what in COMMANDS.items()]
    lines += ["", "python -m lowbit_ext <command> --help: the command's options"]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "advise":
        from .advise import main as advise_main
        advise_main(rest)
        return 0
    print(f"python -m lowbit_ext: unknown command {cmd!r}\n\n{_usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
