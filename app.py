"""The gramviz browser demo: ``python app.py [--port 7860] ...``, the same as ``gramviz demo``."""
from gramviz.app.launch import main

if __name__ == "__main__":
    raise SystemExit(main())
