"""terraform/: its shape, and the real Terraform and checkov run against it.

Terraform runs in a copy of terraform/ under a temporary directory, so no
.terraform/, lock file or state ever lands in the work tree. Providers come from
a local mirror of hashicorp/aws (no network): TERRAFORM_PROVIDER_MIRROR names
it, or the usual places are searched. Without terraform or a mirror, the tests
that need them skip and say so; everything else still runs.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MODULES = ["vpc", "eks", "rabbitmq", "platform"]
ENVIRONMENTS = ["dev", "prod"]
# Every configuration: the modules, the environments and the root (state bootstrap).
CONFIGS = [f"modules/{m}" for m in MODULES] + [f"environments/{e}" for e in ENVIRONMENTS] + ["."]
# Configurations with terraform test suites (tests/*.tftest.hcl).
TESTED = [f"modules/{m}" for m in MODULES] + [f"environments/{e}" for e in ENVIRONMENTS]

MIRROR_ENV = "TERRAFORM_PROVIDER_MIRROR"
MIRROR_CANDIDATES = [
    "/opt/tf-plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/opt/terraform/plugins",
]
ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
TF_TIMEOUT = 150


def _platform() -> str:
    return f"{platform.system().lower()}_{ARCH.get(platform.machine().lower(), platform.machine())}"


def _has_aws_5(root: Path) -> bool:
    pattern = f"registry.terraform.io/hashicorp/aws/5.*/{_platform()}/terraform-provider-aws*"
    return any(root.glob(pattern))


def find_provider_mirror() -> tuple[Path | None, str]:
    """The root of a local mirror holding hashicorp/aws 5.x, or None and where it looked."""
    explicit = os.environ.get(MIRROR_ENV)
    if explicit:
        root = Path(explicit).expanduser()
        if _has_aws_5(root):
            return root, ""
        return None, f"{MIRROR_ENV}={explicit} holds no hashicorp/aws 5.x for {_platform()}"
    for candidate in MIRROR_CANDIDATES:
        root = Path(candidate).expanduser()
        if _has_aws_5(root):
            return root, ""
    return None, (
        f"no local mirror of the hashicorp/aws 5.x provider for {_platform()} in "
        f"{', '.join(MIRROR_CANDIDATES)} (set {MIRROR_ENV} to one: a directory holding "
        "registry.terraform.io/hashicorp/aws/<version>/<os_arch>/terraform-provider-aws*)"
    )


def find_checkov() -> str | None:
    local = REPO / ".venv-tools" / "bin" / "checkov"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("checkov")


# --- the shape of the code, read from the files ------------------------------------


def top_level_blocks(path: Path, kind: str) -> dict[str, str]:
    """Bodies of the top-level `kind "name" { ... }` blocks of a formatted .tf file.

    `terraform fmt` (checked below) puts a top-level block's closing brace alone
    at column 0, which is what ends a block here.
    """
    blocks: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = re.match(rf'^{kind} "([^"]+)" \{{\s*$', lines[i])
        if match:
            end = i + 1
            while end < len(lines) and lines[end] != "}":
                end += 1
            assert end < len(lines), f"{path}: block {kind} {match[1]} is not closed"
            blocks[match[1]] = "\n".join(lines[i + 1 : end])
            i = end
        i += 1
    return blocks


def tf_files(config: str, name: str) -> Path:
    return TERRAFORM / config / name


@pytest.mark.parametrize("config", CONFIGS)
def test_every_module_has_main_variables_outputs_versions(config: str) -> None:
    missing = [
        n
        for n in ("main.tf", "variables.tf", "outputs.tf", "versions.tf")
        if not tf_files(config, n).is_file()
    ]
    assert not missing, f"terraform/{config} lacks {missing}"


def test_the_layout_has_the_modules_both_environments_and_a_root() -> None:
    assert sorted(p.name for p in (TERRAFORM / "modules").iterdir() if p.is_dir()) == sorted(
        MODULES
    )
    assert sorted(p.name for p in (TERRAFORM / "environments").iterdir() if p.is_dir()) == sorted(
        ENVIRONMENTS
    )
    main = (TERRAFORM / "main.tf").read_text()
    assert main.startswith("# terraform/ (this root)"), (
        "the root main.tf must open with what it does"
    )


@pytest.mark.parametrize("config", CONFIGS)
def test_every_variable_is_typed_described_and_validated(config: str) -> None:
    variables = top_level_blocks(tf_files(config, "variables.tf"), "variable")
    assert variables, f"terraform/{config}/variables.tf declares no variables"
    problems = []
    for name, body in variables.items():
        type_match = re.search(r"^  type\s*=\s*(.+)$", body, re.M)
        if not type_match:
            problems.append(f"{name}: no type")
        if not re.search(r'^  description\s*=\s*("\S|<<-?EOT)', body, re.M):
            problems.append(f"{name}: no description")
        # Only a bool, or a free-form tags map, cannot be wrong.
        type_text = type_match[1].strip() if type_match else ""
        can_be_wrong = not (type_text == "bool" or (name == "tags" and type_text == "map(string)"))
        if can_be_wrong and "\n  validation {" not in body:
            problems.append(f"{name} ({type_text}): no validation block")
    assert not problems, f"terraform/{config}/variables.tf: {problems}"


@pytest.mark.parametrize("config", CONFIGS)
def test_every_output_is_described(config: str) -> None:
    outputs = top_level_blocks(tf_files(config, "outputs.tf"), "output")
    assert outputs, f"terraform/{config}/outputs.tf declares no outputs"
    undescribed = [
        n for n, body in outputs.items() if not re.search(r'^  description\s*=\s*"\S', body, re.M)
    ]
    assert not undescribed, f"terraform/{config}: outputs without a description: {undescribed}"


@pytest.mark.parametrize("config", CONFIGS)
def test_the_aws_provider_is_constrained_to_allow_5x(config: str) -> None:
    text = tf_files(config, "versions.tf").read_text()
    assert re.search(r'required_version\s*=\s*">= 1\.1\d"', text), (
        f"terraform/{config}: no required_version"
    )
    match = re.search(r'source\s*=\s*"hashicorp/aws"\s*\n\s*version\s*=\s*"([^"]+)"', text)
    assert match, f"terraform/{config}/versions.tf does not constrain hashicorp/aws"
    constraint = match[1]
    # 5.x from 5.81 on (optional OIDC thumbprints, EKS access entries and upgrade policy), not 6.x.
    assert constraint in {">= 5.81, < 6.0", "~> 5.81"}, f"terraform/{config}: aws {constraint!r}"


def test_each_environment_is_one_call_of_the_platform_module() -> None:
    """dev and prod say only what differs; the shape they share lives in modules/platform."""
    for env in ENVIRONMENTS:
        main = tf_files(f"environments/{env}", "main.tf").read_text()
        assert top_level_blocks(tf_files(f"environments/{env}", "main.tf"), "module").keys() == {
            "platform"
        }, f"{env}: main.tf must call modules/platform and nothing else"
        assert 'source = "../../modules/platform"' in main, f"{env}: platform from elsewhere"
        assert not re.search(r"^(resource|data) ", main, re.M), (
            f"{env}: resources and data sources belong in the modules"
        )


def test_no_configuration_takes_its_zones_from_the_aws_api() -> None:
    """Zones are pinned (checkov CKV_AWS_394, newer than the checkov scripts/tools.sh pins).

    A data.aws_availability_zones list changes when AWS adds or retires a zone, and with it
    which subnet goes where; modules/platform takes an explicit, validated azs list instead.
    """
    readers = [
        str(path.relative_to(REPO))
        for path in sorted(TERRAFORM.rglob("*.tf"))
        if 'data "aws_availability_zones"' in path.read_text()
    ]
    assert not readers, f"zones read from the AWS API instead of pinned: {readers}"


def test_environments_have_an_s3_backend_with_locking() -> None:
    for env in ENVIRONMENTS:
        versions = tf_files(f"environments/{env}", "versions.tf").read_text()
        assert re.search(r'^  backend "s3" \{\}', versions, re.M), f"{env}: no partial S3 backend"
        example = tf_files(f"environments/{env}", "backend.hcl.example").read_text()
        settings = dict(re.findall(r"^(\w+)\s*=\s*(\S+)", example, re.M))
        assert settings.get("use_lockfile") == "true", f"{env}: the example must lock the state"
        assert settings.get("encrypt") == "true", f"{env}: the example must encrypt the state"
        assert settings.get("key") == f'"cargo/{env}/terraform.tfstate"', (
            f"{env}: key {settings.get('key')}"
        )
        assert {"bucket", "region", "kms_key_id"} <= settings.keys()


def test_every_checkov_skip_gives_a_reason() -> None:
    skips = [
        (path.relative_to(REPO), line.strip())
        for path in sorted(TERRAFORM.rglob("*.tf"))
        for line in path.read_text().splitlines()
        if "checkov:skip" in line
    ]
    unreasoned = [
        (str(p), s)
        for p, s in skips
        if not re.fullmatch(r"# checkov:skip=CKV2?_AWS_\d+:\s*\S.{30,}", s)
    ]
    assert not unreasoned, f"checkov skips without a reason: {unreasoned}"


# --- the real terraform ----------------------------------------------------------------


@dataclass
class Terraform:
    """terraform on a private copy of terraform/, initialised from the local mirror."""

    binary: str
    mirror: Path
    tree: Path
    env: dict[str, str]
    initialised: set[str] = field(default_factory=set)

    def run(
        self, config: str, *args: str, tree: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, f"-chdir={(tree or self.tree) / config}", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TF_TIMEOUT,
            check=False,
        )

    def init(self, config: str, tree: Path | None = None) -> None:
        key = f"{tree or self.tree}:{config}"
        if key in self.initialised:
            return
        result = self.run(
            config,
            "init",
            "-backend=false",
            "-input=false",
            "-no-color",
            f"-plugin-dir={self.mirror}",
            tree=tree,
        )
        assert result.returncode == 0, (
            f"terraform init in {config} failed:\n{result.stdout}\n{result.stderr}"
        )
        self.initialised.add(key)


def copy_tree(dest: Path) -> Path:
    shutil.copytree(
        TERRAFORM,
        dest,
        ignore=shutil.ignore_patterns(
            ".terraform", "*.tfstate", "*.tfstate.*", ".terraform.lock.hcl"
        ),
    )
    return dest


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (not on PATH)")
    return binary


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    binary = terraform_binary()
    mirror, why = find_provider_mirror()
    if mirror is None:
        pytest.skip(why)
    home = tmp_path_factory.mktemp("terraform-home")
    cli_config = home / "terraformrc"
    cli_config.write_text("")  # no user settings, no plugin cache: only -plugin-dir
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TF_") and not k.startswith("AWS_")
    }
    env.update(
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        HOME=str(home),
    )
    return Terraform(binary, mirror, copy_tree(tmp_path_factory.mktemp("tf") / "terraform"), env)


def test_terraform_files_are_formatted() -> None:
    binary = terraform_binary()
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"},
    )
    assert result.returncode == 0, (
        f"terraform fmt -check -recursive found unformatted files:\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize(
    "config", [*(f"environments/{e}" for e in ENVIRONMENTS), "."], ids=[*ENVIRONMENTS, "root"]
)
def test_environment_validates(terraform: Terraform, config: str) -> None:
    terraform.init(config)
    result = terraform.run(config, "validate", "-json", "-no-color")
    report = json.loads(result.stdout)
    diagnostics = json.dumps(report["diagnostics"], indent=1)
    assert result.returncode == 0, diagnostics
    assert report["valid"], diagnostics
    assert report["error_count"] == 0, diagnostics
    assert report["warning_count"] == 0, diagnostics


def run_blocks(config_dir: Path) -> list[str]:
    return [
        name
        for suite in sorted((config_dir / "tests").glob("*.tftest.hcl"))
        for name in re.findall(r'^run "([^"]+)"', suite.read_text(), re.M)
    ]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("config", TESTED, ids=[c.split("/")[-1] for c in TESTED])
def test_module_tests_pass(terraform: Terraform, config: str) -> None:
    runs = run_blocks(terraform.tree / config)
    assert len(runs) >= 4, f"terraform/{config}/tests has only {len(runs)} run blocks"
    terraform.init(config)
    result = terraform.run(config, "test", "-no-color")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"terraform test failed in {config}:\n{output}"
    # Every run passed: none failed, and none was skipped after an earlier error.
    passed = re.findall(r'^  run "([^"]+)"\.\.\. pass$', output, re.M)
    assert sorted(passed) == sorted(runs), output
    assert f"Success! {len(runs)} passed, 0 failed." in output, output


@pytest.mark.timeout(300)
def test_module_tests_catch_a_vpc_that_ignores_single_nat_gateway(
    terraform: Terraform,
    tmp_path: Path,
) -> None:
    """The suites can fail: break the NAT layout in a copy and the VPC suite must say so."""
    broken = copy_tree(tmp_path / "terraform")
    main = broken / "modules" / "vpc" / "main.tf"
    text = main.read_text()
    wrong = text.replace(
        "nat_count  = var.single_nat_gateway ? 1 : local.zone_count",
        "nat_count  = local.zone_count",
    )
    assert wrong != text, "the mutation no longer applies to modules/vpc/main.tf"
    main.write_text(wrong)
    terraform.init("modules/vpc", tree=broken)
    result = terraform.run("modules/vpc", "test", "-no-color", tree=broken)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert 'run "a_single_nat_gateway_serves_every_zone"... fail' in output, output
    assert "single_nat_gateway = true must create exactly one NAT gateway" in output, output


# --- checkov -------------------------------------------------------------------------


def test_checkov_finds_no_unskipped_failure(tmp_path: Path) -> None:
    checkov = find_checkov()
    if checkov is None:
        pytest.fail(
            "checkov is not installed: run scripts/tools.sh (scripts/test.sh does)"
            " to create .venv-tools",
            pytrace=False,
        )
    result = subprocess.run(
        [
            checkov,
            "--directory",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--compact",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failures without an inline, reasoned skip:\n" + "\n".join(failed)
    assert result.returncode == 0, result.stderr[-2000:]
    assert summary["parsing_errors"] == 0, summary
    assert summary["passed"] >= 100, f"checkov checked too little: {summary}"
    unreasoned = [
        f"{c['check_id']} {c['resource']}"
        for c in report["results"]["skipped_checks"]
        if len(c["check_result"].get("suppress_comment", "").strip()) < 30
    ]
    assert not unreasoned, f"skipped checks without a reason: {unreasoned}"
