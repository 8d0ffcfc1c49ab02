"""`relationship addin install|status`: the classic add-in set-up, every platform branch.

The platform, the home folder and the command runner are injected, so nothing here runs the
real `xlwings addin install` or touches the real ~/.xlwings.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from addin import setup
from addin.addin_cli import register

PY = "C:\\Envs\\rel\\Scripts\\python.exe"
PROJECT = Path("C:/work/relationship")
NOW = dt.datetime(2026, 11, 22, 9, 30, 0)
OK_OUTPUT = "Successfully installed the xlwings add-in! Please restart Excel."


class FakeRunner:
    """Records commands; `xlwings addin install` succeeds (and may create the conf)."""

    def __init__(self, addin=(0, OK_OUTPUT), imports=(0, ""), creates: Path | None = None):
        self.calls: list[tuple[list[str], dict | None]] = []
        self.addin, self.imports, self.creates = addin, imports, creates

    def __call__(self, command, env):
        self.calls.append((list(command), dict(env) if env else None))
        if command[1:] == ["-m", "xlwings.cli", "addin", "install"]:
            if self.creates is not None and not self.creates.exists():
                # what xlwings' config_create does when there is no config file yet
                self.creates.parent.mkdir(parents=True, exist_ok=True)
                self.creates.write_text(f'"INTERPRETER_WIN","{command[0]}"\n')
            return self.addin
        return self.imports


def conf_of(home: Path, platform: str = "windows") -> Path:
    return setup.config_path(platform, home)


def install(home: Path, platform: str = "windows", runner=None, **kw) -> setup.InstallReport:
    return setup.install(
        platform=platform,
        home=home,
        executable=PY,
        project=PROJECT,
        runner=runner or FakeRunner(),
        now=NOW,
        **kw,
    )


# ------------------------------------------------------------------------------ paths
def test_config_and_addin_paths_per_platform(tmp_path):
    assert setup.config_path("windows", tmp_path) == tmp_path / ".xlwings" / "xlwings.conf"
    assert setup.config_path("macos", tmp_path) == (
        tmp_path / "Library/Containers/com.microsoft.Excel/Data/xlwings.conf"
    )
    assert setup.addin_path("windows", tmp_path, {}) == (
        tmp_path / "AppData/Roaming/Microsoft/Excel/XLSTART/xlwings.xlam"
    )
    assert setup.addin_path("windows", tmp_path, {"APPDATA": str(tmp_path / "R")}) == (
        tmp_path / "R/Microsoft/Excel/XLSTART/xlwings.xlam"
    )
    assert setup.addin_path("macos", tmp_path).name == "xlwings.xlam"
    assert "Startup.localized" in str(setup.addin_path("macos", tmp_path))
    assert setup.addin_path("linux", tmp_path) is None


@pytest.mark.parametrize(
    ("raw", "name"),
    [("win32", "windows"), ("darwin", "macos"), ("linux", "linux"), ("cygwin", "cygwin")],
)
def test_platform_name(raw, name):
    assert setup.platform_name(raw) == name


def test_project_dir_holds_the_udfs_package():
    assert (setup.project_dir() / "udfs" / "functions.py").is_file()


def test_config_keys_are_the_ones_the_vba_add_in_reads():
    import xlwings

    bas = (Path(xlwings.__file__).parent / "xlwings.bas").read_text(errors="replace")
    for key in (setup.UDF_MODULES_KEY, setup.PYTHONPATH_KEY, *setup.INTERPRETER_KEYS.values()):
        assert f'GetConfig("{key}"' in bas


# ------------------------------------------------------------------------------ install
def test_install_on_windows_writes_the_three_entries(tmp_path):
    runner = FakeRunner()
    report = install(tmp_path, runner=runner)
    assert runner.calls == [([PY, "-m", "xlwings.cli", "addin", "install"], None)]
    assert conf_of(tmp_path).read_text() == (
        f'"UDF MODULES","udfs.functions"\n"INTERPRETER_WIN","{PY}"\n"PYTHONPATH","{PROJECT}"\n'
    )
    assert report.backup is None  # there was no file to back up
    assert [c.key for c in report.changes] == ["UDF MODULES", "INTERPRETER_WIN", "PYTHONPATH"]


def test_install_on_macos_uses_the_container_path_and_interpreter_mac(tmp_path):
    report = install(tmp_path, platform="macos")
    text = conf_of(tmp_path, "macos").read_text()
    assert f'"INTERPRETER_MAC","{PY}"' in text
    assert "INTERPRETER_WIN" not in text
    assert report.config == conf_of(tmp_path, "macos")
    assert "Windows only" in setup.next_steps("macos")[0]


def test_install_keeps_every_other_line_and_backs_up(tmp_path):
    conf = conf_of(tmp_path)
    conf.parent.mkdir(parents=True)
    original = (
        '"LICENSE_KEY","abc123"\n'
        '"interpreter_win","C:\\Old\\python.exe"\n'
        "# a note someone left\n"
        '"UDF MODULES","mymodule;other.udfs"\n'
        '"PYTHONPATH","D:\\code"\n'
        '"SHOW CONSOLE","True"\n'
        '"UDF MODULES","stale duplicate"\n'
    )
    conf.write_text(original)
    report = install(tmp_path)
    assert conf.read_text() == (
        '"LICENSE_KEY","abc123"\n'
        f'"INTERPRETER_WIN","{PY}"\n'
        "# a note someone left\n"
        '"UDF MODULES","mymodule;other.udfs;udfs.functions"\n'
        f'"PYTHONPATH","D:\\code;{PROJECT}"\n'
        '"SHOW CONSOLE","True"\n'
    )
    assert report.backup == conf.with_name("xlwings.conf.20261122-093000.bak")
    assert report.backup.read_text() == original
    old = {c.key: c.old for c in report.changes}
    assert old == {
        "UDF MODULES": "mymodule;other.udfs",
        "INTERPRETER_WIN": "C:\\Old\\python.exe",
        "PYTHONPATH": "D:\\code",
    }


def test_install_twice_changes_nothing_the_second_time(tmp_path):
    install(tmp_path)
    first = conf_of(tmp_path).read_text()
    report = install(tmp_path)
    assert conf_of(tmp_path).read_text() == first
    assert report.backup is None
    assert not any(c.changed for c in report.changes)
    assert list(conf_of(tmp_path).parent.glob("*.bak")) == []


def test_existing_entries_are_matched_like_the_add_in_does(tmp_path):
    conf = conf_of(tmp_path)
    conf.parent.mkdir(parents=True)
    conf.write_text(f'"udf modules","UDFS.FUNCTIONS"\n"PYTHONPATH","{PROJECT}\\"\n')
    report = install(tmp_path)
    changes = {c.key: c for c in report.changes}
    assert not changes["UDF MODULES"].changed  # same module, any case
    assert not changes["PYTHONPATH"].changed  # same folder, trailing separator
    assert changes["INTERPRETER_WIN"].old is None


def test_backups_never_overwrite_each_other(tmp_path):
    conf = conf_of(tmp_path)
    conf.parent.mkdir(parents=True)
    conf.write_text('"A","1"\n')
    install(tmp_path)
    conf.write_text('"A","2"\n')
    install(tmp_path)
    backups = sorted(p.name for p in conf.parent.glob("*.bak"))
    assert backups == ["xlwings.conf.20261122-093000-1.bak", "xlwings.conf.20261122-093000.bak"]


def test_install_merges_into_the_file_xlwings_just_created(tmp_path):
    runner = FakeRunner(creates=conf_of(tmp_path))
    report = install(tmp_path, runner=runner)
    text = conf_of(tmp_path).read_text()
    assert text.count("INTERPRETER_WIN") == 1
    assert '"UDF MODULES","udfs.functions"' in text
    assert report.backup is not None  # the file xlwings wrote is backed up too


def test_undecodable_bytes_are_kept(tmp_path):
    conf = conf_of(tmp_path)
    conf.parent.mkdir(parents=True)
    conf.write_bytes(b'"ONEDRIVE_CONSUMER_WIN","C:\\Users\\J\xfcrgen\\OneDrive"\n')
    install(tmp_path)
    assert conf.read_bytes().startswith(
        b'"ONEDRIVE_CONSUMER_WIN","C:\\Users\\J\xfcrgen\\OneDrive"\n'
    )


def test_failed_xlwings_install_leaves_the_config_alone(tmp_path):
    conf = conf_of(tmp_path)
    conf.parent.mkdir(parents=True)
    conf.write_text('"LICENSE_KEY","abc"\n')
    failing = FakeRunner(addin=(0, "Error: Failed to install the add-in: If Excel is running..."))
    with pytest.raises(setup.AddinError, match="did not succeed.*Excel is running"):
        install(tmp_path, runner=failing)
    assert conf.read_text() == '"LICENSE_KEY","abc"\n'
    with pytest.raises(setup.AddinError, match="exit code 3"):
        install(tmp_path, runner=FakeRunner(addin=(3, "")))


def test_dry_run_runs_nothing_and_writes_nothing(tmp_path):
    runner = FakeRunner()
    report = install(tmp_path, runner=runner, dry_run=True)
    assert runner.calls == []
    assert not conf_of(tmp_path).exists()
    assert {c.new for c in report.changes} == {"udfs.functions", PY, str(PROJECT)}


def test_install_on_linux_explains_and_changes_nothing(tmp_path):
    runner = FakeRunner()
    with pytest.raises(setup.AddinError) as info:
        install(tmp_path, platform="linux", runner=runner)
    text = str(info.value)
    assert "this is linux" in text
    assert "xlwings addin install" in text
    assert "UDF MODULES = udfs.functions" in text
    assert f"INTERPRETER_WIN = {PY}" in text
    assert "xlwings Server or xlwings Lite" in text
    assert runner.calls == []
    assert not conf_of(tmp_path).exists()


def test_a_value_with_a_quote_is_refused(tmp_path):
    with pytest.raises(setup.AddinError, match="quote"):
        setup.install(
            platform="windows",
            home=tmp_path,
            executable='C:\\odd"name\\python.exe',
            project=PROJECT,
            runner=FakeRunner(),
            now=NOW,
        )


# ------------------------------------------------------------------------------ status
def test_status_when_ready(tmp_path):
    install(tmp_path)
    addin = setup.addin_path("windows", tmp_path, {})
    addin.parent.mkdir(parents=True)
    addin.write_bytes(b"xlam")
    runner = FakeRunner()
    result = setup.status(platform="windows", home=tmp_path, runner=runner)
    assert runner.calls == [([PY, "-c", "import udfs.functions"], {"PYTHONPATH": str(PROJECT)})]
    assert result.problems() == []
    assert result.settings == {
        "UDF MODULES": "udfs.functions",
        "INTERPRETER_WIN": PY,
        "PYTHONPATH": str(PROJECT),
    }
    text = "\n".join(result.lines())
    assert "Module udfs.functions: imports" in text
    assert f"Add-in file: {addin} (installed)" in text
    assert text.endswith("Ready.")


def test_status_names_what_is_missing(tmp_path):
    result = setup.status(platform="windows", home=tmp_path, runner=FakeRunner())
    assert result.problems() == [
        "the xlwings add-in is not installed",
        "UDF MODULES does not list udfs.functions",
        "INTERPRETER_WIN is not set",
    ]
    install(tmp_path)
    broken = FakeRunner(imports=(1, "Traceback...\nModuleNotFoundError: No module named 'pandas'"))
    result = setup.status(platform="windows", home=tmp_path, runner=broken)
    assert "the configured Python cannot import udfs.functions" in result.problems()
    assert "ModuleNotFoundError: No module named 'pandas'" in "\n".join(result.lines())


def test_status_on_macos_reads_the_container_config(tmp_path):
    install(tmp_path, platform="macos")
    result = setup.status(platform="macos", home=tmp_path, runner=FakeRunner())
    assert result.settings["INTERPRETER_MAC"] == PY
    assert result.problems() == ["the xlwings add-in is not installed"]


# ------------------------------------------------------------------------------ CLI
def app_for(tmp_path: Path, platform: str, runner: FakeRunner) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app, platform=platform, home=tmp_path, runner=runner)
    return app


def test_cli_install_on_windows_prints_changes_and_the_step_left(tmp_path, monkeypatch):
    monkeypatch.setattr(setup, "project_dir", lambda: PROJECT)
    monkeypatch.setattr(setup.sys, "executable", PY)
    result = CliRunner().invoke(app_for(tmp_path, "windows", FakeRunner()), ["addin", "install"])
    assert result.exit_code == 0, result.output
    assert OK_OUTPUT in result.output
    assert "UDF MODULES: udfs.functions (new)" in result.output
    assert "Trust access to the VBA project object model" in result.output
    assert "Import Functions" in result.output
    assert conf_of(tmp_path).is_file()


def test_cli_install_dry_run(tmp_path):
    runner = FakeRunner()
    result = CliRunner().invoke(
        app_for(tmp_path, "windows", runner), ["addin", "install", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.output
    assert runner.calls == []
    assert not conf_of(tmp_path).exists()


def test_cli_install_on_linux_exits_non_zero(tmp_path):
    result = CliRunner().invoke(app_for(tmp_path, "linux", FakeRunner()), ["addin", "install"])
    assert result.exit_code == 1
    assert "Error: the classic xlwings add-in runs in Excel on Windows" in result.output
    assert not conf_of(tmp_path).exists()


def test_cli_status(tmp_path):
    result = CliRunner().invoke(app_for(tmp_path, "windows", FakeRunner()), ["addin", "status"])
    assert result.exit_code == 1
    assert "Config file:" in result.output
    assert "UDF MODULES: (not set)" in result.output
    assert "xlwings: " in result.output
    assert "Not ready" in result.output


def test_cli_help_lists_both_commands(tmp_path):
    result = CliRunner().invoke(app_for(tmp_path, "windows", FakeRunner()), ["addin", "--help"])
    assert result.exit_code == 0
    assert "install" in result.output and "status" in result.output
