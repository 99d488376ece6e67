//! What every operation of `/openapi.json` can answer besides its own successes, generated
//! from its shape so the document cannot drift from the code: a secured route may answer 401
//! and 503, a route with parameters 404 and 422, a route with a body 400, 413, 415 and 422.
//! Problem answers are `ProblemDocument`s; a 422 is a `ValidationProblem`, whose `errors`
//! names at least one place. Bodies are JSON objects (never `null`).

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder};

use plinth_module_sdk::wire::PROBLEM_JSON;

/// Which credential is read when a request carries both.
pub(super) const CREDENTIALS: &str = "When a request carries `X-Module-API-Key`, that key is \
    the credential and the bearer token is not read: an invalid key is a 401 even beside a \
    valid token.";

const PROBLEM: &str = "#/components/schemas/ProblemDocument";
const VALIDATION: &str = "#/components/schemas/ValidationProblem";

/// The statuses each kind of operation can answer, with what they mean.
const SECURED: [(&str, &str); 2] = [
    (
        "401",
        "No valid credential: a missing, expired or forged token, or an unknown API key",
    ),
    (
        "503",
        "The store or another part of the platform is not answering; retry",
    ),
];
const WITH_PARAMETERS: [(&str, &str); 1] = [(
    "422",
    "A path or query parameter is not valid; `errors` names it",
)];
const WITH_PATH: [(&str, &str); 1] = [("404", "Not found (or not visible to the caller)")];
const WITH_BODY: [(&str, &str); 4] = [
    (
        "400",
        "The body is not JSON, or not sent as `application/json`",
    ),
    (
        "413",
        "The body, or the record it would be stored as, is larger than the platform takes",
    ),
    ("415", "The body is in a charset other than UTF-8"),
    ("422", "Invalid input; `errors` names each field"),
];

pub(super) fn complete(openapi: &mut OpenApi) {
    schemas(openapi);
    for item in openapi.paths.paths.values_mut() {
        let path_parameters = item.parameters.iter().flatten().count();
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            operation_answers(operation, path_parameters > 0);
        }
    }
}

fn operation_answers(operation: &mut Operation, shared_path_parameters: bool) {
    let parameters = operation.parameters.iter().flatten();
    let in_path = shared_path_parameters
        || parameters
            .clone()
            .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let any_parameter = in_path || parameters.count() > 0;
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut add: Vec<(&str, &str)> = Vec::new();
    if secured {
        add.extend(SECURED);
    }
    if in_path {
        add.extend(WITH_PATH);
    }
    if any_parameter {
        add.extend(WITH_PARAMETERS);
    }
    if let Some(body) = operation.request_body.as_mut() {
        object_body(body);
        add.extend(WITH_BODY);
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in add {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(status, description));
    }
    // Every problem answer names its shape; a 422's is the one with `errors`.
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && let Some(content) = response.content.get_mut(PROBLEM_JSON)
        {
            let shape = if status == "422" { VALIDATION } else { PROBLEM };
            content.schema = Some(RefOr::Ref(Ref::new(shape)));
        }
    }
}

fn problem(status: &str, description: &str) -> RefOr<Response> {
    let shape = if status == "422" { VALIDATION } else { PROBLEM };
    let content = ContentBuilder::new().schema(Some(Ref::new(shape))).build();
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(PROBLEM_JSON, content)
            .build(),
    )
}

/// A body documented as "any JSON" is an object: `null`, arrays and scalars are refused.
fn object_body(body: &mut RequestBody) {
    if body.required.is_none() {
        body.required = Some(Required::True);
    }
    for content in body.content.values_mut() {
        let any = match &content.schema {
            None => true,
            Some(RefOr::T(Schema::Object(object))) => {
                matches!(object.schema_type, SchemaType::AnyValue) && object.properties.is_empty()
            }
            _ => false,
        };
        if any {
            content.schema = Some(RefOr::T(Schema::Object(
                ObjectBuilder::new().schema_type(Type::Object).build(),
            )));
        }
    }
}

/// `ProblemDocument` with every field it always has required, and `ValidationProblem`.
fn schemas(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    if let Some(RefOr::T(Schema::Object(problem))) = components.schemas.get_mut("ProblemDocument") {
        problem.required = ["type", "title", "status", "detail"]
            .map(String::from)
            .to_vec();
    }
    let errors = ArrayBuilder::new()
        .items(Ref::from_schema_name("Problem"))
        .min_items(Some(1))
        .description(Some(
            "One entry per invalid field (`\"\"` is the whole body)",
        ));
    let validation = AllOfBuilder::new()
        .item(Ref::new(PROBLEM))
        .item(
            ObjectBuilder::new()
                .property("errors", errors)
                .required("errors"),
        )
        .description(Some(
            "A 422's problem document: `errors` names every invalid field or parameter",
        ))
        .build();
    components.schemas.insert(
        "ValidationProblem".into(),
        RefOr::T(Schema::AllOf(validation)),
    );
}
