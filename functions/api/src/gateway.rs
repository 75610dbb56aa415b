//! API Gateway (REST proxy) events ⇄ the API's plain HTTP types.

use std::convert::Infallible;

use jobs_api_core::api::JobsApi;
use jobs_api_core::api::http::{HttpRequest, HttpResponse};
use jobs_core::ports::ServicePorts;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

pub async fn handle<P: ServicePorts>(
    api: &JobsApi<P>,
    request: Request,
) -> Result<Response<Body>, Infallible> {
    Ok(into_response(api.handle(from_request(&request)).await))
}

fn from_request(request: &Request) -> HttpRequest {
    HttpRequest {
        method: request.method().as_str().to_string(),
        // The path below the stage, as API Gateway matched it.
        path: request.raw_http_path().to_string(),
        query: request
            .query_string_parameters_ref()
            .map(|q| {
                q.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: request.body().as_ref().to_vec(),
        request_id: match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone(),
            _ => None,
        },
        source_ip: match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
            _ => None,
        },
    }
}

fn into_response(response: HttpResponse) -> Response<Body> {
    // JSON and HTML go back as text: a binary body would reach clients base64-encoded unless
    // the REST API declared binary media types.
    let body = match String::from_utf8(response.body) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(bytes) => Body::Binary(bytes.into_bytes()),
    };
    let mut out = Response::new(body);
    *out.status_mut() = http_status(response.status);
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            lambda_http::http::HeaderName::from_bytes(name.as_bytes()),
            lambda_http::http::HeaderValue::from_str(&value),
        ) {
            out.headers_mut().append(name, value);
        }
    }
    out
}

fn http_status(code: u16) -> lambda_http::http::StatusCode {
    lambda_http::http::StatusCode::from_u16(code)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_proxy_event_maps_path_query_headers_and_body() {
        let event = serde_json::json!({
            "resource": "/{proxy+}", "path": "/jobs", "httpMethod": "GET",
            "headers": {"Authorization": "Bearer t", "Content-Type": "application/json"},
            "multiValueHeaders": {"Authorization": ["Bearer t"], "Content-Type": ["application/json"]},
            "queryStringParameters": {"limit": "5"}, "multiValueQueryStringParameters": {"limit": ["5"], "status": ["running"]},
            "pathParameters": {"proxy": "jobs"}, "stageVariables": null,
            "requestContext": {"stage": "prod", "httpMethod": "GET", "path": "/prod/jobs", "resourcePath": "/{proxy+}",
                                "accountId": "000000000000", "identity": {"sourceIp": "203.0.113.9"}, "requestId": "r1", "apiId": "a1", "resourceId": "x"},
            "body": "{\"a\":1}", "isBase64Encoded": false
        });
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let mapped = from_request(&request);
        assert_eq!(
            (mapped.method.as_str(), mapped.path.as_str()),
            ("GET", "/jobs")
        );
        let mut query = mapped.query.clone();
        query.sort();
        assert_eq!(
            query,
            vec![
                ("limit".to_string(), "5".to_string()),
                ("status".to_string(), "running".to_string())
            ]
        );
        assert_eq!(mapped.header("authorization"), Some("Bearer t"));
        assert_eq!(mapped.body, b"{\"a\":1}");
        assert_eq!(
            (mapped.request_id.as_deref(), mapped.source_ip.as_deref()),
            (Some("r1"), Some("203.0.113.9"))
        );
    }

    #[test]
    fn responses_keep_status_headers_and_text_bodies() {
        let out = into_response(HttpResponse {
            status: 422,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        });
        assert_eq!(out.status().as_u16(), 422);
        assert_eq!(out.headers()["content-type"], "application/json");
        assert!(matches!(out.body(), Body::Text(t) if t == "{}"));
    }
}
