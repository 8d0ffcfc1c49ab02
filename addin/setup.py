"""Set up the classic xlwings add-in so that Excel loads the Relationships functions.

``install`` runs xlwings' own ``xlwings addin install`` (copies ``xlwings.xlam`` into Excel's
startup folder), then sets three entries of the user config file the add-in reads:

=================  ==================================================================
``UDF MODULES``    gains ``udfs.functions`` (the add-in's "UDF Modules" box; a ``;`` list)
``INTERPRETER_*``  this Python (``INTERPRETER_WIN`` on Windows, ``INTERPRETER_MAC``)
``PYTHONPATH``     gains the folder that holds the ``udfs`` package (a ``;`` list)
=================  ==================================================================

The file (``~/.xlwings/xlwings.conf`` on Windows, ``~/Library/Containers/com.microsoft.Excel/
Data/xlwings.conf`` on macOS) holds one ``"KEY","VALUE"`` pair a line; the add-in matches keys
case-insensitively and takes the first match. It is read, changed and written back whole:
every other line stays as it was, and the old file is kept as a dated backup.

Classic xlwings runs worksheet functions on Windows only; on macOS the set-up is done but the
functions need xlwings Lite or xlwings Server (see the README's Excel section). Platform,
home folder and the command runner are parameters, so the tests cover every branch on any
machine.
"""

from __future__ import annotations

import datetime as dt
import locale
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relationships.errors import RelationshipError

UDF_MODULE = "udfs.functions"
UDF_MODULES_KEY = "UDF MODULES"
PYTHONPATH_KEY = "PYTHONPATH"
INTERPRETER_KEYS = {"windows": "INTERPRETER_WIN", "macos": "INTERPRETER_MAC"}
SUPPORTED = tuple(INTERPRETER_KEYS)
ADDIN_FILE = "xlwings.xlam"
_LINE = re.compile(r'^\s*"([^"]*)"\s*,\s*"([^"]*)"\s*$')
# The add-in (VBA) reads the file in the system code page, as xlwings writes it.
_ENCODING = locale.getpreferredencoding(False)

# (returncode, combined output) of a command; extra environment variables as a mapping
Runner = Callable[[Sequence[str], Mapping[str, str] | None], tuple[int, str]]


class AddinError(RelationshipError):
    """The add-in cannot be set up: unsupported platform, a failed step or an unusable file."""


def run_command(command: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run a command; its exit code and its output (stdout then stderr)."""
    try:
        done = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            env={**os.environ, **env} if env else None,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, str(exc)
    return done.returncode, (done.stdout or "") + (done.stderr or "")


def platform_name(sys_platform: str | None = None) -> str:
    """'windows', 'macos', or the raw platform name (e.g. 'linux')."""
    name = sys.platform if sys_platform is None else sys_platform
    if name.startswith("win"):
        return "windows"
    if name == "darwin":
        return "macos"
    return name


def config_path(platform: str, home: Path) -> Path:
    """Where xlwings and its add-in read the user config file."""
    if platform == "macos":
        return home / "Library" / "Containers" / "com.microsoft.Excel" / "Data" / "xlwings.conf"
    return home / ".xlwings" / "xlwings.conf"


def addin_path(platform: str, home: Path, env: Mapping[str, str] | None = None) -> Path | None:
    """Where ``xlwings addin install`` puts the add-in (Excel's usual startup folder)."""
    if platform == "windows":
        appdata = (env or {}).get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
        return base / "Microsoft" / "Excel" / "XLSTART" / ADDIN_FILE
    if platform == "macos":
        office = home / "Library" / "Group Containers" / "UBF8T346G9.Office"
        return office / "User Content.localized" / "Startup.localized" / "Excel" / ADDIN_FILE
    return None


def project_dir() -> Path:
    """The folder holding the ``udfs`` package: what Python needs on its path."""
    import udfs

    return Path(udfs.__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ config file
@dataclass
class ConfigFile:
    """xlwings.conf as lines: entries are edited in place, every other line kept verbatim."""

    path: Path
    lines: list[str] = field(default_factory=list)
    exists: bool = False

    @classmethod
    def read(cls, path: Path) -> ConfigFile:
        if not path.is_file():
            return cls(path)
        # Bytes that do not decode are kept exactly as they were.
        text = path.read_text(encoding=_ENCODING, errors="surrogateescape")
        return cls(path, text.splitlines(), exists=True)

    def entries(self) -> list[tuple[str, str]]:
        return [m.groups() for line in self.lines if (m := _LINE.match(line))]

    def get(self, key: str) -> str | None:
        """The value of a key as the add-in reads it: the first match, any case."""
        return next((v for k, v in self.entries() if k.lower() == key.lower()), None)

    def set(self, key: str, value: str) -> None:
        """Set a key: the first entry is rewritten in place, later duplicates dropped."""
        if '"' in value or "\n" in value:
            raise AddinError(f"{key}: a value holding a quote or a line break cannot be stored")
        new = f'"{key}","{value}"'
        out, done = [], False
        for line in self.lines:
            m = _LINE.match(line)
            if m and m.group(1).lower() == key.lower():
                if not done:
                    out.append(new)
                    done = True
                continue
            out.append(line)
        if not done:
            out.append(new)
        self.lines = out

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def _with_item(current: str | None, item: str) -> str:
    """A ``;`` list with item added at the end unless there already (same spelling)."""
    parts = [p.strip() for p in (current or "").split(";") if p.strip()]
    if not any(_same(p, item) for p in parts):
        parts.append(item)
    return ";".join(parts)


def _same(a: str, b: str) -> bool:
    norm = [x.strip().rstrip("/\\").replace("\\", "/").lower() for x in (a, b)]
    return norm[0] == norm[1]


@dataclass(frozen=True)
class Change:
    key: str
    old: str | None
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new


def plan(conf: ConfigFile, platform: str, executable: str, project: Path) -> list[Change]:
    """The entries install sets, old and new value (unchanged ones included)."""
    interpreter_key = INTERPRETER_KEYS[platform]
    wanted = {
        UDF_MODULES_KEY: _with_item(conf.get(UDF_MODULES_KEY), UDF_MODULE),
        interpreter_key: executable,
        PYTHONPATH_KEY: _with_item(conf.get(PYTHONPATH_KEY), str(project)),
    }
    return [Change(key, conf.get(key), value) for key, value in wanted.items()]


def write_config(conf: ConfigFile, changes: Sequence[Change], now: dt.datetime) -> Path | None:
    """Apply the changes and write the file back atomically; returns the backup made, if any."""
    if not any(c.changed for c in changes):
        return None
    for c in changes:
        conf.set(c.key, c.new)
    conf.path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if conf.exists:
        backup = conf.path.with_name(f"{conf.path.name}.{now:%Y%m%d-%H%M%S}.bak")
        n = 1
        while backup.exists():
            backup = conf.path.with_name(f"{conf.path.name}.{now:%Y%m%d-%H%M%S}-{n}.bak")
            n += 1
        backup.write_bytes(conf.path.read_bytes())
    tmp = conf.path.with_name(f".{conf.path.name}.tmp")
    try:
        tmp.write_text(conf.text(), encoding=_ENCODING, errors="surrogateescape")
        tmp.replace(conf.path)
    except UnicodeEncodeError as exc:
        raise AddinError(
            f"{conf.path}: a value cannot be written in the system code page ({exc.reason}); "
            "install Python in a folder whose path uses plain letters"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    conf.exists = True
    return backup


# ------------------------------------------------------------------------------ install
def next_steps(platform: str) -> list[str]:
    """What is left to do in Excel."""
    if platform == "macos":
        return [
            "Excel for Mac cannot run classic xlwings worksheet functions (xlwings supports "
            "them on Windows only): use xlwings Lite or xlwings Server for "
            "=RELATIONSHIP_TYPE(...) on a Mac (see the README's Excel section).",
            "The add-in and its settings are in place for when the workbook is opened on Windows.",
        ]
    return [
        "Restart Excel.",
        "Once: File > Options > Trust Center > Trust Center Settings > Macro Settings > "
        "tick 'Trust access to the VBA project object model'.",
        "Once per workbook: save it as .xlsm, in the VBA editor (Alt+F11) tick "
        "Tools > References > xlwings, then click 'Import Functions' on the xlwings tab.",
        "Then type e.g. =RELATIONSHIP_TYPE(A2:M2, A$1:M$1) and fill down.",
    ]


@dataclass
class InstallReport:
    platform: str
    config: Path
    changes: list[Change]
    backup: Path | None = None
    addin_output: str = ""
    dry_run: bool = False

    def lines(self) -> list[str]:
        out = [f"Config file: {self.config}"]
        for c in self.changes:
            if not c.changed:
                out.append(f"  {c.key}: {c.new} (already set)")
            elif c.old is None:
                out.append(f"  {c.key}: {c.new} (new)")
            else:
                out.append(f"  {c.key}: {c.new} (was {c.old})")
        if self.backup:
            out.append(f"Backup of the previous file: {self.backup}")
        return out


def install(
    *,
    platform: str | None = None,
    home: Path | None = None,
    executable: str | None = None,
    project: Path | None = None,
    runner: Runner = run_command,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> InstallReport:
    """Install the xlwings add-in and point its settings at our functions.

    Raises AddinError on an unsupported platform (the message says what it would do) or
    when ``xlwings addin install`` fails; the config file is then left alone.
    """
    platform = platform or platform_name()
    home = home or Path.home()
    executable = executable or sys.executable
    project = project or project_dir()
    conf = ConfigFile.read(config_path(platform if platform in SUPPORTED else "windows", home))
    if platform not in SUPPORTED:
        raise AddinError(unsupported_text(platform, conf, executable, project))
    report = InstallReport(platform, conf.path, plan(conf, platform, executable, project))
    report.dry_run = dry_run
    if dry_run:
        return report
    code, output = runner([executable, "-m", "xlwings.cli", "addin", "install"], None)
    report.addin_output = output.strip()
    if code != 0 or "successfully installed" not in output.lower():
        raise AddinError(
            "'xlwings addin install' did not succeed"
            + (f": {report.addin_output}" if report.addin_output else f" (exit code {code})")
            + " (quit Excel and try again); xlwings.conf was not changed"
        )
    conf = ConfigFile.read(conf.path)  # xlwings may just have created it
    report.changes = plan(conf, platform, executable, project)
    report.backup = write_config(conf, report.changes, now or dt.datetime.now())
    return report


def unsupported_text(platform: str, conf: ConfigFile, executable: str, project: Path) -> str:
    changes = plan(conf, "windows", executable, project)
    planned = "; ".join(f"{c.key} = {c.new}" for c in changes)
    return (
        f"the classic xlwings add-in runs in Excel on Windows (and macOS, without worksheet "
        f"functions); this is {platform}. On Windows this command would run 'xlwings addin "
        f"install' and set in ~/.xlwings/xlwings.conf: {planned}. On this machine, use "
        "xlwings Server or xlwings Lite (see the README's Excel section)"
    )


# ------------------------------------------------------------------------------ status
@dataclass
class Status:
    platform: str
    config: Path
    config_exists: bool
    settings: dict[str, str | None]
    interpreter: str | None
    module_imports: bool | None  # None: not checked (no interpreter configured)
    module_message: str
    xlwings_version: str
    addin: Path | None
    addin_installed: bool

    def problems(self) -> list[str]:
        """What stops Excel from loading the functions (empty when ready)."""
        out = []
        if self.platform not in SUPPORTED:
            out.append(f"the classic add-in needs Excel on Windows; this is {self.platform}")
        if not self.addin_installed:
            out.append("the xlwings add-in is not installed")
        if UDF_MODULE not in [
            m.strip() for m in (self.settings.get(UDF_MODULES_KEY) or "").split(";")
        ]:
            out.append(f"{UDF_MODULES_KEY} does not list {UDF_MODULE}")
        if self.module_imports is None:
            out.append(self.module_message)
        elif not self.module_imports:
            out.append(f"the configured Python cannot import {UDF_MODULE}")
        return out

    def lines(self) -> list[str]:
        out = [
            f"Platform: {self.platform}",
            f"Config file: {self.config}" + ("" if self.config_exists else " (missing)"),
        ]
        for key, value in self.settings.items():
            out.append(f"  {key}: {value if value is not None else '(not set)'}")
        if self.module_imports is None:
            out.append(f"Module {UDF_MODULE}: not checked ({self.module_message})")
        else:
            verdict = "imports" if self.module_imports else "does NOT import"
            out.append(f"Module {UDF_MODULE}: {verdict} with {self.interpreter}")
            if self.module_message:
                out.append(f"  {self.module_message}")
        out.append(f"xlwings: {self.xlwings_version}")
        if self.addin is None:
            out.append("Add-in file: none on this platform")
        else:
            state = "installed" if self.addin_installed else "not installed"
            out.append(f"Add-in file: {self.addin} ({state})")
        problems = self.problems()
        if problems:
            out.append("Not ready: " + "; ".join(problems) + ".")
        elif self.platform == "macos":
            out.append("Set up. " + next_steps("macos")[0])
        else:
            out.append("Ready.")
        return out


def status(
    *,
    platform: str | None = None,
    home: Path | None = None,
    runner: Runner = run_command,
    env: Mapping[str, str] | None = None,
) -> Status:
    """What is configured, and whether the configured Python can import our functions.

    ``env`` (for APPDATA) defaults to this process's environment, or to none when a home
    folder is given.
    """
    platform = platform or platform_name()
    if env is None:
        env = os.environ if home is None else {}
    home = home or Path.home()
    conf = ConfigFile.read(config_path(platform, home))
    interpreter_key = INTERPRETER_KEYS.get(platform, "INTERPRETER_WIN")
    settings = {k: conf.get(k) for k in (UDF_MODULES_KEY, interpreter_key, PYTHONPATH_KEY)}
    interpreter = settings[interpreter_key]
    if interpreter:
        paths = [p for p in (settings[PYTHONPATH_KEY] or "").split(";") if p.strip()]
        code, output = runner(
            [interpreter, "-c", f"import {UDF_MODULE}"],
            {"PYTHONPATH": os.pathsep.join(paths)} if paths else None,
        )
        imports: bool | None = code == 0
        lines = output.strip().splitlines()
        message = "" if imports else (lines[-1] if lines else f"exit code {code}")
    else:
        imports, message = None, f"{interpreter_key} is not set"
    import xlwings

    addin = addin_path(platform, home, env)
    return Status(
        platform=platform,
        config=conf.path,
        config_exists=conf.exists,
        settings=settings,
        interpreter=interpreter,
        module_imports=imports,
        module_message=message,
        xlwings_version=xlwings.__version__,
        addin=addin,
        addin_installed=bool(addin and addin.is_file()),
    )
