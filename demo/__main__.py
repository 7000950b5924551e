"""``python -m demo [dive | monet-features | data] [OPTIONS]`` from the
repository root: the main demo by default, the diving demo, MoNet's
feature-level demo, or the demo dataset alone (see ``demo/README.md``)."""
import sys
from typing import List, Optional

# subcommand -> module whose main(argv) runs it.
COMMANDS = {
    'dive': 'demo.dive_demo',
    'monet-features': 'demo.monet_feature_demo',
    'data': 'demo.demo_data_cli',
}


def main(argv: Optional[List[str]] = None) -> None:
    import importlib
    argv = sys.argv[1:] if argv is None else list(argv)
    module = 'demo.hallucinet_demo'
    if argv and argv[0] in COMMANDS:
        module = COMMANDS[argv.pop(0)]
    importlib.import_module(module).main(argv)


if __name__ == '__main__':
    main()
