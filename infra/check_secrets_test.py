"""What infra/check_secrets.py refuses, and that template.yaml passes it.

    python -m unittest discover -s infra -p '*_test.py'    (infra/check-template.sh runs it)
"""

import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import check_secrets  # noqa: E402

ROOT = Path(__file__).parent.parent

HEAD = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
"""

SECRET = """\
  Token:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: {PasswordLength: 64, ExcludePunctuation: true}
"""


def problems_of(body: str) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "template.yaml"
        path.write_text(HEAD + textwrap.dedent(body))
        return check_secrets.problems(check_secrets.load(path))


def function_with(variables: str) -> str:
    return (
        "Resources:\n"
        + SECRET
        + "  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        + "      Handler: bootstrap\n      Runtime: provided.al2023\n      CodeUri: .\n"
        + "      Environment:\n        Variables:\n"
        + textwrap.indent(textwrap.dedent(variables), " " * 10)
    )


class CheckSecrets(unittest.TestCase):
    def test_the_platform_template_keeps_every_secret_in_secrets_manager(self):
        self.assertEqual(check_secrets.problems(check_secrets.load(ROOT / "template.yaml")), [])

    def test_a_secret_arn_from_the_template_passes(self):
        self.assertEqual(problems_of(function_with("PLINTH_JWT_SECRET_ARN: !Ref Token\nPLINTH_TABLE: t\n")), [])

    def test_a_plain_secret_in_an_environment_is_refused_with_its_name(self):
        found = problems_of(function_with("PLINTH_JWT_SECRET: hunter2hunter2\n"))
        self.assertEqual(len(found), 1)
        self.assertIn("Fn: environment variable PLINTH_JWT_SECRET looks secret", found[0])

    def test_a_secret_passed_as_a_parameter_is_refused_twice(self):
        body = "Parameters:\n  ContextKey: {Type: String, NoEcho: true}\n" + function_with(
            "PLINTH_CONTEXT_KEY: !Ref ContextKey\n"
        )
        found = problems_of(body)
        self.assertTrue(any("PLINTH_CONTEXT_KEY looks secret" in p for p in found), found)
        self.assertTrue(any("Parameters.ContextKey: NoEcho parameter" in p for p in found), found)

    def test_an_arn_variable_naming_no_secret_of_the_template_is_refused(self):
        found = problems_of(function_with("PLINTH_CONTEXT_KEY_ARN: arn:aws:kms:eu-west-1:1:key/x\n"))
        self.assertEqual(len(found), 1, found)

    def test_a_dynamic_reference_to_a_secret_value_is_refused_whatever_the_name(self):
        found = problems_of(function_with("PLINTH_DB: '{{resolve:secretsmanager:db:SecretString:password}}'\n"))
        self.assertEqual(len(found), 1, found)
        self.assertIn("resolves a secret's value into the environment", found[0])

    def test_a_globals_environment_is_checked_too(self):
        body = "Globals:\n  Function:\n    Environment:\n      Variables:\n        API_KEY: abc\n" + function_with(
            "PLINTH_TABLE: t\n"
        )
        self.assertEqual(len(problems_of(body)), 1)

    def test_a_task_definition_environment_is_checked_too(self):
        body = """\
        Resources:
          Task:
            Type: AWS::ECS::TaskDefinition
            Properties:
              ContainerDefinitions:
                - Name: m
                  Image: i
                  Environment:
                    - {Name: PLINTH_API_KEY, Value: pk_live_123}
        """
        found = problems_of(body)
        self.assertEqual(len(found), 1, found)
        self.assertIn("Task: environment variable PLINTH_API_KEY", found[0])

    def test_an_output_with_a_secret_value_is_refused_and_its_arn_passes(self):
        body = (
            "Resources:\n"
            + SECRET
            + "Outputs:\n"
            + "  TokenArn: {Value: !Ref Token}\n"
            + "  TokenValue: {Value: '{{resolve:secretsmanager:x}}'}\n"
            + "  ApiKey: {Value: abc}\n"
        )
        found = problems_of(body)
        self.assertEqual(len(found), 2, found)
        self.assertTrue(any(p.startswith("Outputs.TokenValue") for p in found), found)
        self.assertTrue(any(p.startswith("Outputs.ApiKey") for p in found), found)

    def test_the_command_fails_and_names_the_variable(self):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "template.yaml"
            path.write_text(HEAD + function_with("PLINTH_JWT_SECRET: x\n"))
            run = subprocess.run(
                [sys.executable, str(Path(__file__).parent / "check_secrets.py"), str(path)],
                capture_output=True,
                text=True,
            )
        self.assertEqual(run.returncode, 1)
        self.assertIn("PLINTH_JWT_SECRET", run.stderr)


if __name__ == "__main__":
    unittest.main()
