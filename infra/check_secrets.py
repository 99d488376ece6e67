#!/usr/bin/env python3
"""Fails when a secret could be read from the stack's configuration rather than Secrets Manager.

    python infra/check_secrets.py [template.yaml]

Run by infra/check-template.sh with the tools venv (it needs cfn-lint's YAML decoder). A
function's environment, a task definition's and the stack's outputs can be read by anyone who
may describe them, so, in template.yaml:

- an environment variable whose name says secret (SECRET, KEY, TOKEN, PASSWORD, CREDENTIAL)
  must end in _ARN and name an AWS::SecretsManager::Secret of the template (Ref or GetAtt);
- no environment variable and no output may hold a dynamic reference to a secret's value
  ({{resolve:secretsmanager:…}}, {{resolve:ssm-secure:…}}), since CloudFormation would write
  the plain value there;
- an output whose name says secret must be a secret's ARN (Ref of a Secret);
- no parameter is NoEcho or named like a secret: secrets are made by the stack, not passed in.

infra/check_secrets_test.py holds what each rule refuses.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Iterator

SECRET_WORDS = re.compile(r"SECRET|KEY|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
DYNAMIC_SECRET = re.compile(r"\{\{resolve:(secretsmanager|ssm-secure):", re.IGNORECASE)
SECRET_TYPES = {"AWS::SecretsManager::Secret"}
FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
TASK_TYPES = {"AWS::ECS::TaskDefinition"}


def load(path: Path) -> dict[str, Any]:
    """The template as plain data, intrinsic functions in their long form (Ref, Fn::Sub)."""
    from cfnlint.decode import decode_str

    template, matches = decode_str(path.read_text())
    if template is None:
        raise SystemExit(f"{path}: not a template: {[str(m) for m in matches]}")
    return template


def strings(value: Any) -> Iterator[str]:
    """Every string inside a value, intrinsic functions included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def names_a_secret(value: Any, secrets: set[str]) -> bool:
    """`Ref: S` or `Fn::GetAtt: [S, Id]` of a Secrets Manager secret S of the template."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    if "Ref" in value:
        return value["Ref"] in secrets
    attribute = value.get("Fn::GetAtt")
    if isinstance(attribute, str):
        attribute = attribute.split(".", 1)
    return isinstance(attribute, list) and len(attribute) == 2 and attribute[0] in secrets and attribute[1] == "Id"


def environments(template: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, variable, value) of every environment variable the template sets."""
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    for name, value in (globals_env.get("Variables") or {}).items():
        yield "Globals.Function", name, value
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type")
        properties = resource.get("Properties") or {}
        if kind in FUNCTION_TYPES:
            for name, value in ((properties.get("Environment") or {}).get("Variables") or {}).items():
                yield logical_id, name, value
        elif kind in TASK_TYPES:
            for container in properties.get("ContainerDefinitions") or []:
                for pair in container.get("Environment") or []:
                    yield logical_id, pair.get("Name", ""), pair.get("Value")


def problems(template: dict[str, Any]) -> list[str]:
    """What the rules in this file's docstring find, one line each."""
    resources = template.get("Resources") or {}
    secrets = {k for k, r in resources.items() if r.get("Type") in SECRET_TYPES}
    found = []
    for where, name, value in environments(template):
        if any(DYNAMIC_SECRET.search(s) for s in strings(value)):
            found.append(f"{where}: environment variable {name} resolves a secret's value into the environment")
        elif SECRET_WORDS.search(name) and not (name.endswith("_ARN") and names_a_secret(value, secrets)):
            found.append(
                f"{where}: environment variable {name} looks secret; pass NAME_ARN = the ARN of a "
                "Secrets Manager secret of this template (!Ref) and read it at start"
            )
    for name, output in (template.get("Outputs") or {}).items():
        value = output.get("Value")
        if any(DYNAMIC_SECRET.search(s) for s in strings(value)):
            found.append(f"Outputs.{name}: resolves a secret's value into the stack's outputs")
        elif SECRET_WORDS.search(name) and not names_a_secret(value, secrets):
            found.append(f"Outputs.{name}: looks secret and is not a Secrets Manager secret's ARN (!Ref)")
    for name, parameter in (template.get("Parameters") or {}).items():
        if str(parameter.get("NoEcho", "")).lower() == "true":
            found.append(f"Parameters.{name}: NoEcho parameter; make the secret in the stack (AWS::SecretsManager::Secret)")
        elif SECRET_WORDS.search(name) and not name.endswith(("Arn", "ARN")):
            found.append(f"Parameters.{name}: named like a secret; secrets are made by the stack, not passed in")
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "template.yaml")
    found = problems(load(path))
    for line in found:
        print(f"{path}: {line}", file=sys.stderr)
    if found:
        return 1
    print(f"check-secrets: {path} keeps every secret in Secrets Manager (environment, outputs, parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
