"""What template.yaml promises beyond what cfn-lint and checkov check (docs/aws.md).

    python -m unittest discover -s infra -p '*_test.py'    (infra/check-template.sh runs it)

checkov checks each resource alone (a function has a dead-letter queue, a log group has a
retention); these tests check how they are wired: each trigger's retries and dead letters, each
function's own log group, the boundary the installer must create module roles with, and who may
reach module tasks.
"""

import json
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import check_secrets  # noqa: E402

TEMPLATE = check_secrets.load(Path(__file__).parent.parent / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {k: r for k, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
ASYNC_TRIGGERS = {"EventBridgeRule", "ScheduleV2"}


def statements(function: dict) -> list[dict]:
    return [s for p in function["Properties"].get("Policies", []) if isinstance(p, dict) for s in p.get("Statement", [])]


def statement(function: str, sid: str) -> dict:
    found = [s for s in statements(FUNCTIONS[function]) if s.get("Sid") == sid]
    assert len(found) == 1, f"{function} has no statement {sid}"
    return found[0]


class Template(unittest.TestCase):
    def test_the_stack_asks_only_for_a_vpc_and_its_private_subnets(self):
        required = sorted(k for k, p in TEMPLATE["Parameters"].items() if "Default" not in p)
        self.assertEqual(required, ["PrivateSubnetIds", "VpcId"])
        self.assertEqual(TEMPLATE["Parameters"]["PrivateSubnetIds"]["Type"], "List<AWS::EC2::Subnet::Id>")

    def test_the_stack_creates_what_modules_run_on(self):
        kinds = {r["Type"] for r in RESOURCES.values()}
        for kind in [
            "AWS::ECS::Cluster",
            "AWS::ServiceDiscovery::HttpNamespace",
            "AWS::ApiGatewayV2::VpcLink",
            "AWS::EC2::SecurityGroup",
            "AWS::IAM::ManagedPolicy",
            "AWS::S3::Bucket",
            "AWS::SQS::Queue",
            "AWS::SecretsManager::Secret",
        ]:
            self.assertIn(kind, kinds)
        installer = FUNCTIONS["InstallerFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(installer["PLINTH_VPC_LINK_ID"], {"Ref": "VpcLink"})
        self.assertEqual(installer["PLINTH_LAMBDA_PACKAGE_BUCKET"], {"Ref": "PackageBucket"})
        self.assertEqual(installer["PLINTH_MODULE_PERMISSIONS_BOUNDARY"], {"Ref": "ModulePermissionsBoundary"})
        self.assertEqual(installer["PLINTH_ECS_CLUSTER"], {"Ref": "EcsCluster"})

    def test_every_rule_and_schedule_retries_and_keeps_its_dead_letters(self):
        for name, function in FUNCTIONS.items():
            for event_name, event in function["Properties"].get("Events", {}).items():
                if event["Type"] not in ASYNC_TRIGGERS:
                    continue
                props = event["Properties"]
                with self.subTest(trigger=f"{name}.{event_name}"):
                    self.assertIn("RetryPolicy", props)
                    self.assertIn("Arn", props.get("DeadLetterConfig", {}))

    def test_every_asynchronously_invoked_function_has_a_dead_letter_queue(self):
        for name, function in FUNCTIONS.items():
            events = function["Properties"].get("Events", {}).values()
            if any(e["Type"] in ASYNC_TRIGGERS for e in events):
                with self.subTest(function=name):
                    queue = function["Properties"]["DeadLetterQueue"]
                    self.assertEqual(queue["Type"], "SQS")
                    self.assertEqual(RESOURCES[queue["TargetArn"]["Fn::GetAtt"][0]]["Type"], "AWS::SQS::Queue")
                    self.assertIn("EventInvokeConfig", function["Properties"])

    def test_every_function_logs_to_its_own_group_with_the_stacks_retention(self):
        groups = []
        for name, function in FUNCTIONS.items():
            with self.subTest(function=name):
                group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
                self.assertEqual(RESOURCES[group]["Properties"]["RetentionInDays"], {"Ref": "LogRetentionDays"})
                groups.append(group)
        self.assertEqual(len(set(groups)), len(FUNCTIONS))

    def test_every_function_has_a_concurrency_limit(self):
        for name, function in FUNCTIONS.items():
            with self.subTest(function=name):
                self.assertIn("ReservedConcurrentExecutions", function["Properties"])

    def test_the_usage_function_hears_the_access_log_and_every_event_on_the_platform_bus(self):
        events = RESOURCES["UsageFunction"]["Properties"]["Events"]
        log = events["AccessLog"]["Properties"]
        self.assertEqual(log["LogGroupName"], {"Ref": "ApiAccessLogGroup"})
        self.assertIn("$.tenant", log["FilterPattern"])
        rule = events["PlatformEvents"]["Properties"]
        self.assertEqual(rule["EventBusName"], {"Ref": "EventBus"})
        self.assertEqual(rule["Pattern"], {"source": [{"prefix": "plinth."}]})
        fmt = RESOURCES["PlatformApi"]["Properties"]["AccessLogSettings"]["Format"]
        for field in ["$context.authorizer.tenant", "$context.authorizer.module",
                      "$context.authorizer.request_bytes", "$context.requestTimeEpoch"]:
            self.assertIn(field, fmt)

    def test_the_http_api_logs_every_request_with_the_authorizers_error(self):
        settings = RESOURCES["PlatformApi"]["Properties"]["AccessLogSettings"]
        for field in ["$context.requestId", "$context.identity.sourceIp", "$context.routeKey", "$context.status",
                      "$context.responseLatency", "$context.authorizer.error"]:
            self.assertIn(field, settings["Format"])
        self.assertIn("DefaultRouteSettings", RESOURCES["PlatformApi"]["Properties"])

    def test_the_installer_creates_module_roles_only_with_the_boundary(self):
        create = statement("InstallerFunction", "CreateModuleRolesWithTheBoundary")
        self.assertIn("iam:CreateRole", create["Action"])
        self.assertEqual(create["Condition"]["StringEquals"]["iam:PermissionsBoundary"], {"Ref": "ModulePermissionsBoundary"})
        for s in statements(FUNCTIONS["InstallerFunction"]):
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            if s is not create and s["Effect"] == "Allow":
                self.assertNotIn("iam:CreateRole", actions, s.get("Sid"))
                self.assertNotIn("iam:PutRolePolicy", actions, s.get("Sid"))
                self.assertFalse(any(a in ("iam:*", "*") for a in actions), s.get("Sid"))

    def test_module_tasks_are_reached_only_from_the_vpc_link_the_module_load_balancer_and_the_platform_functions(self):
        ingress = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
                   and r["Properties"]["GroupId"] == {"Ref": "ModuleTaskSecurityGroup"}]
        sources = sorted(i["SourceSecurityGroupId"]["Ref"] for i in ingress)
        self.assertEqual(sources, ["ModuleLoadBalancerSecurityGroup", "PlatformFunctionSecurityGroup",
                                   "VpcLinkSecurityGroup"])
        for rule in ingress:
            self.assertEqual((rule["FromPort"], rule["ToPort"]), ({"Ref": "ModulePortFrom"}, {"Ref": "ModulePortTo"}))
        self.assertNotIn("SecurityGroupIngress", RESOURCES["ModuleTaskSecurityGroup"]["Properties"])

    def test_the_module_load_balancer_is_internal_and_reached_only_from_the_vpc_link(self):
        balancer = RESOURCES["ModuleLoadBalancer"]["Properties"]
        self.assertEqual((balancer["Scheme"], balancer["Type"]), ("internal", "application"))
        self.assertEqual(balancer["Subnets"], {"Ref": "PrivateSubnetIds"})
        self.assertEqual(balancer["SecurityGroups"], [{"Ref": "ModuleLoadBalancerSecurityGroup"}])
        group = RESOURCES["ModuleLoadBalancerSecurityGroup"]["Properties"]
        ingress = group["SecurityGroupIngress"] + [
            r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
            and r["Properties"]["GroupId"] == {"Ref": "ModuleLoadBalancerSecurityGroup"}]
        self.assertEqual([i["SourceSecurityGroupId"] for i in ingress], [{"Ref": "VpcLinkSecurityGroup"}])
        self.assertNotIn("CidrIp", ingress[0])
        egress = group["SecurityGroupEgress"]
        self.assertEqual([e["DestinationSecurityGroupId"] for e in egress], [{"Ref": "ModuleTaskSecurityGroup"}])
        self.assertEqual((egress[0]["FromPort"], egress[0]["ToPort"]), ({"Ref": "ModulePortFrom"}, {"Ref": "ModulePortTo"}))
        link_out = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::EC2::SecurityGroupEgress"
                    and r["Properties"]["GroupId"] == {"Ref": "VpcLinkSecurityGroup"}]
        self.assertEqual([e["DestinationSecurityGroupId"] for e in link_out], [{"Ref": "ModuleLoadBalancerSecurityGroup"}])
        self.assertEqual(RESOURCES["VpcLink"]["Properties"]["SecurityGroupIds"], [{"Ref": "VpcLinkSecurityGroup"}])

    def test_the_module_listener_answers_a_problem_document_when_no_version_is_routed(self):
        listener = RESOURCES["ModuleListener"]["Properties"]
        self.assertEqual(listener["LoadBalancerArn"], {"Ref": "ModuleLoadBalancer"})
        [action] = listener["DefaultActions"]
        self.assertEqual(action["Type"], "fixed-response")
        answer = action["FixedResponseConfig"]
        self.assertEqual(answer["StatusCode"], "503")
        self.assertEqual(answer["ContentType"], "application/json")
        body = json.loads(answer["MessageBody"])
        self.assertEqual(body, {"type": "about:blank", "title": "Service Unavailable", "status": 503,
                                "detail": "no version of this module is routed"})

    def test_the_installer_keeps_rules_and_target_groups_only_on_the_module_listener(self):
        env = FUNCTIONS["InstallerFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(env["PLINTH_MODULE_LISTENER_ARN"], {"Ref": "ModuleListener"})
        groups = statement("InstallerFunction", "ModuleTargetGroups")
        self.assertIn("targetgroup/plinth-*/*", groups["Resource"]["Fn::Sub"])
        rules = statement("InstallerFunction", "ModuleListenerRules")
        self.assertEqual(rules["Resource"][0], {"Ref": "ModuleListener"})
        self.assertIn("listener-rule/app/plinth-${Stage}-modules/*", rules["Resource"][1]["Fn::Sub"])
        self.assertEqual(RESOURCES["ModuleLoadBalancer"]["Properties"]["Name"], {"Fn::Sub": "plinth-${Stage}-modules"})
        writes = [s for s in statements(FUNCTIONS["InstallerFunction"]) if s["Effect"] == "Allow"
                  and any(a.startswith("elasticloadbalancing:") and not a.startswith("elasticloadbalancing:Describe")
                          for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
        self.assertEqual(sorted(s["Sid"] for s in writes), ["ModuleListenerRules", "ModuleTargetGroups"])
        for name, function in FUNCTIONS.items():
            if name != "InstallerFunction":
                for s in statements(function):
                    actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                    self.assertFalse(any(a.startswith("elasticloadbalancing:") for a in actions), name)
        # Lambda targets: the load balancer's permission to invoke a module function.
        self.assertIn("lambda:AddPermission", statement("InstallerFunction", "ModuleFunctions")["Action"])

    def test_the_functions_that_call_modules_run_in_the_vpc_and_the_hot_path_does_not(self):
        in_vpc = sorted(k for k, f in FUNCTIONS.items() if "VpcConfig" in f["Properties"])
        self.assertEqual(in_vpc, ["HealthCheckerFunction", "InstallerFunction", "RegistryApiFunction"])

    def test_the_context_key_is_written_only_by_the_functions_that_sign(self):
        writers = sorted(
            name for name in FUNCTIONS for s in statements(FUNCTIONS[name])
            if "secretsmanager:PutSecretValue" in s["Action"] and s["Resource"] == {"Ref": "ContextKeySecret"}
        )
        self.assertEqual(writers, ["AuthorizerFunction", "RegistryApiFunction"])

    def test_the_rollout_driver_steps_rollouts_every_minute_writing_only_their_partitions(self):
        driver = FUNCTIONS["RolloutDriverFunction"]
        self.assertEqual(driver["Metadata"]["BuildProperties"]["Binary"], "rollout-driver")
        schedule = driver["Properties"]["Events"]["EveryMinute"]
        self.assertEqual(schedule["Type"], "ScheduleV2")
        self.assertEqual(schedule["Properties"]["ScheduleExpression"], "rate(1 minute)")
        # A failed step is not repeated: the next one is a minute away.
        self.assertEqual(schedule["Properties"]["RetryPolicy"]["MaximumRetryAttempts"], 0)
        self.assertEqual(driver["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"], 0)
        policies = driver["Properties"]["Policies"]
        managed = [name for p in policies if isinstance(p, dict) for name in p if name != "Statement"]
        self.assertEqual(sorted(managed), ["DynamoDBReadPolicy", "EventBridgePutEventsPolicy"])
        self.assertIn({"EventBridgePutEventsPolicy": {"EventBusName": {"Ref": "EventBus"}}}, policies)
        writes = statement("RolloutDriverFunction", "RolloutWrites")
        self.assertEqual(writes["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
                         ["MODULE#*", "ROLLOUTS", "AUDIT#*"])
        allowed = [a for s in statements(driver) if s["Effect"] == "Allow"
                   for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
        self.assertFalse([a for a in allowed if not a.startswith("dynamodb:")], allowed)

    def test_the_access_log_names_the_version_and_the_usage_function_may_count_it(self):
        fmt = RESOURCES["PlatformApi"]["Properties"]["AccessLogSettings"]["Format"]
        self.assertIn('"version":"$context.authorizer.version"', fmt)
        hours = statement("UsageFunction", "UsageHours")
        self.assertIn("USAGEVERSION#*", hours["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])

    def test_no_role_may_invoke_or_change_a_platform_function_or_its_dead_letters(self):
        names = sorted(f["Properties"]["FunctionName"]["Fn::Sub"] for f in FUNCTIONS.values())
        for name, function in FUNCTIONS.items():
            for s in statements(function):
                if s.get("Sid") not in ("NeverInvokeThePlatform", "NeverThePlatformFunctions"):
                    continue
                with self.subTest(function=name, sid=s["Sid"]):
                    self.assertEqual(s["Effect"], "Deny")
                    denied = sorted(r["Fn::Sub"].split(":function:")[1] for r in s["Resource"])
                    self.assertEqual(denied, names)
        queues = sorted(k for k, r in RESOURCES.items() if r["Type"] == "AWS::SQS::Queue"
                        and r["Properties"]["QueueName"]["Fn::Sub"].endswith("-dlq"))
        kept = statement("InstallerFunction", "NeverThePlatformQueues")
        self.assertEqual(sorted(r["Fn::GetAtt"][0] for r in kept["Resource"]), queues)


if __name__ == "__main__":
    unittest.main()
