"""The README's "Using it" commands run as written, in order, from an empty folder (issue 14): only
the placeholders a reader fills in are filled (HUB, V, the token the enroll line printed, the "…" of a
generated applicant, the NUMBER the accept printed, the stick's folder, the port)."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

from tests.applicants import People

from .processes import free_loopback_port, healthz, run_sanji, start_sanji, stop_process

README = Path(__file__).resolve().parents[2] / "README.md"


def using_it_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Using it") :]
    block = re.search(r"```\n(.*?)\n```", section, re.S)
    assert block
    joined = block.group(1).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        line = re.sub(r"\s*\[[^\]]*\]", "", line)  # optional parts, as [--out FILE]
        commands += [c.strip() for c in line.split(" ; ") if c.strip()]
    return commands


def test_the_readme_commands_run_as_written(tmp_path: Path, people: People) -> None:
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    values = {"HUB": tmp_path / "hub", "V": tmp_path / "v", "/media/usb": tmp_path / "usb"}
    server = None
    token = number = ""
    ran = []
    try:
        for command in using_it_commands():
            argv = shlex.split(command)
            assert argv[0] == "sanji", command
            argv = [str(values.get(a, a)) for a in argv[1:]]
            argv = [a.replace("http://127.0.0.1:8700", url).replace("http://10.1.2.3:8700", url) for a in argv]
            argv = [a.replace("8700", str(port)) if a == "8700" else a for a in argv]
            argv = [token if a == "SJT-..." else number if a == "NUMBER" else a for a in argv]
            if "…" in argv:
                filler = iter([people.name(), people.id_number(), people.phone(), people.address()])
                argv = [next(filler) if a == "…" else a for a in argv]
            if argv[:2] == ["hub", "serve"]:
                server = start_sanji(*argv, log=tmp_path / "serve.log")
                for _ in range(200):
                    if healthz(url) is not None:
                        break
                    time.sleep(0.1)
                assert healthz(url) is not None, (tmp_path / "serve.log").read_text(errors="replace")
                ran.append(command)
                continue
            res = run_sanji(*argv)
            assert res.code == 0, f"README line `{command}` exited {res.code}: {res.stderr}"
            if argv[:2] == ["hub", "enroll"]:
                token = res.data["token"]
            if argv[:2] == ["node", "accept"]:
                number = res.data["number"]
            ran.append(command)
    finally:
        if server is not None:
            stop_process(server)
    assert len(ran) >= 15 and number and token
