//! What template.yaml gives the installer to route each installed version of a module on
//! its own (issue 23 on AWS), made on moto for the cells that ask for it
//! ([`crate::platform::Cell::start_with_module_listener`]): the HTTP API and its Lambda
//! authorizer (`PLINTH_HTTP_API_ID`, `PLINTH_AUTHORIZER_ID`), the VPC link
//! (`PLINTH_VPC_LINK_ID`), and the internal load balancer in two subnets of a VPC with its
//! HTTP listener, whose default action answers 503 with a problem document
//! (`PLINTH_MODULE_LISTENER_ARN`).

use aws_config::SdkConfig;
use aws_sdk_apigatewayv2::types::{AuthorizerType, ProtocolType};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum, ProtocolEnum,
};

/// The listener's default answer, as template.yaml's `ModuleListener` has it.
pub const NO_VERSION_ROUTED: &str = r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"no version of this module is routed"}"#;

/// The module listener's resources, by the ids and ARN the installer is given.
pub struct ModuleListener {
    pub api_id: String,
    pub authorizer_id: String,
    pub vpc_link_id: String,
    pub listener_arn: String,
}

impl ModuleListener {
    /// Creates the HTTP API, its authorizer, the VPC, its subnets, the VPC link, the load
    /// balancer and its listener, named for `stage`.
    pub async fn create(sdk: &SdkConfig, stage: &str) -> Self {
        let api = aws_sdk_apigatewayv2::Client::new(sdk);
        let created = api
            .create_api()
            .name(format!("plinth-{stage}"))
            .protocol_type(ProtocolType::Http)
            .send()
            .await
            .expect("create the HTTP API");
        let api_id = created.api_id().expect("the HTTP API's id").to_owned();
        let authorizer = api
            .create_authorizer()
            .api_id(&api_id)
            .name("plinth")
            .authorizer_type(AuthorizerType::Request)
            .authorizer_uri(format!(
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/\
                 arn:aws:lambda:us-east-1:123456789012:function:{}/invocations",
                crate::platform::AUTHORIZER
            ))
            .authorizer_payload_format_version("2.0")
            .enable_simple_responses(true)
            .identity_source("$request.header.Authorization")
            .send()
            .await
            .expect("create the HTTP API's authorizer");
        let authorizer_id = authorizer
            .authorizer_id()
            .expect("the authorizer's id")
            .to_owned();

        let ec2 = aws_sdk_ec2::Client::new(sdk);
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.1.0.0/16")
            .send()
            .await
            .expect("create the load balancer's VPC");
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).expect("the VPC's id");
        let mut subnets = Vec::new();
        for (cidr, zone) in [("10.1.1.0/24", "us-east-1a"), ("10.1.2.0/24", "us-east-1b")] {
            let subnet = ec2
                .create_subnet()
                .vpc_id(vpc_id)
                .cidr_block(cidr)
                .availability_zone(zone)
                .send()
                .await
                .expect("create a subnet of the load balancer");
            subnets.push(
                subnet
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .expect("the subnet's id")
                    .to_owned(),
            );
        }
        let link = api
            .create_vpc_link()
            .name(format!("plinth-{stage}"))
            .set_subnet_ids(Some(subnets.clone()))
            .send()
            .await
            .expect("create the VPC link");
        let vpc_link_id = link.vpc_link_id().expect("the VPC link's id").to_owned();

        let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
        // A load balancer's name: 32 characters at most, no `-` at the end.
        let name: String = format!("lb-{stage}").chars().rev().take(32).collect();
        let name: String = name.chars().rev().collect();
        let name = name.trim_matches('-');
        let balancer = elb
            .create_load_balancer()
            .name(name)
            .set_subnets(Some(subnets))
            .scheme(LoadBalancerSchemeEnum::Internal)
            .r#type(LoadBalancerTypeEnum::Application)
            .send()
            .await
            .expect("create the module load balancer");
        let balancer_arn = balancer
            .load_balancers()
            .first()
            .and_then(|b| b.load_balancer_arn())
            .expect("the load balancer's ARN");
        let answer = FixedResponseActionConfig::builder()
            .status_code("503")
            .content_type("application/json")
            .message_body(NO_VERSION_ROUTED)
            .build();
        let listener = elb
            .create_listener()
            .load_balancer_arn(balancer_arn)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::FixedResponse)
                    .fixed_response_config(answer)
                    .build(),
            )
            .send()
            .await
            .expect("create the module listener");
        let listener_arn = listener
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .expect("the listener's ARN")
            .to_owned();
        Self {
            api_id,
            authorizer_id,
            vpc_link_id,
            listener_arn,
        }
    }

    /// The installer's environment for them (template.yaml's `InstallerFunction`).
    pub fn installer_env(&self) -> [(&'static str, &str); 4] {
        [
            ("PLINTH_HTTP_API_ID", self.api_id.as_str()),
            ("PLINTH_AUTHORIZER_ID", self.authorizer_id.as_str()),
            ("PLINTH_VPC_LINK_ID", self.vpc_link_id.as_str()),
            ("PLINTH_MODULE_LISTENER_ARN", self.listener_arn.as_str()),
        ]
    }
}
