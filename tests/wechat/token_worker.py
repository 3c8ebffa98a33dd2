"""One OS process of the token-sharing tests (run as a script by test_token_sharing.py; not a test module).

argv[1] is a JSON spec: {"config": create_app test config, "barrier": dir, "index": n, "calls": n,
"seconds": s, "use_every": n}. The process builds the app, reports ready, waits for the "go" file, then
asks the token service for a token in a tight loop (``calls`` times, or for ``seconds``), making a real
gettemplate call every ``use_every`` iterations. It prints one JSON line: what it saw (token values
replaced by short hashes) and when its loop started and ended (epoch seconds).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path


def main() -> None:
    spec = json.loads(sys.argv[1])
    from dashboard import create_app
    from dashboard.wechat import get_client
    from dashboard.wechat.errors import WeChatError

    app = create_app(spec["config"])
    barrier = Path(spec["barrier"])
    sources: Counter[str] = Counter()
    tokens: list[str] = []
    errors: list[str] = []
    with app.app_context():
        client = get_client()
        (barrier / f"ready-{spec['index']}").touch()
        go = barrier / "go"
        while not go.exists():
            time.sleep(0.001)
        started = time.time()
        deadline = time.monotonic() + float(spec.get("seconds", 0))
        use_every = int(spec.get("use_every", 0))
        i = 0
        while i < int(spec.get("calls", 0)) or time.monotonic() < deadline:
            try:
                issued = client.tokens.get()
                sources[issued.source] += 1
                digest = hashlib.sha256(issued.token.encode()).hexdigest()[:12]
                if not tokens or tokens[-1] != digest:
                    tokens.append(digest)
                if use_every and i % use_every == 0:
                    client.get_templates()
            except WeChatError as error:
                errors.append(str(error))
            i += 1
        ended = time.time()
        client.close()
    report = {
        "calls": i,
        "sources": sources,
        "tokens": tokens,
        "errors": errors,
        "started": started,
        "ended": ended,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
