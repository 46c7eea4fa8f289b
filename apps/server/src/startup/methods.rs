//! 405 for a route that exists under another method: the default service looks the path up
//! in the table of every route (`/api/v1` from the OpenAPI document, the seed APIs from the
//! lists they are served from) and answers 405 with `Allow`, in the shape of the API the path
//! belongs to; any other path is a 404.

use actix_web::dev::ResourceDef;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use utoipa::openapi::OpenApi;

use crate::compat::django::{DrfError, DrfTexts};
use crate::compat::member_invitation::SpringError;
use crate::compat::{self, Seed};
use crate::config::CompatApis;
use crate::error::{ApiError, ErrorCode};

/// Whose route a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    V1,
    Seed(Seed),
}

/// Every route's path pattern and method.
#[derive(Debug)]
pub struct MethodTable {
    routes: Vec<(ResourceDef, Method, Api)>,
}

impl MethodTable {
    /// The routes of the OpenAPI document `doc` and of the seed APIs `apis` serves.
    pub fn build(doc: &OpenApi, apis: CompatApis) -> Self {
        let mut routes = Vec::new();
        for (path, item) in &doc.paths.paths {
            let ops = [
                (Method::GET, item.get.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::DELETE, item.delete.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::HEAD, item.head.is_some()),
            ];
            let def = ResourceDef::new(path.as_str());
            for (method, present) in ops {
                if present {
                    routes.push((def.clone(), method, Api::V1));
                }
            }
        }
        for (seed, method, path) in compat::route_list(apis) {
            routes.push((ResourceDef::new(path.as_str()), method, Api::Seed(seed)));
        }
        Self { routes }
    }

    /// The API and the methods of the routes whose pattern matches `path`; `None` when none
    /// does. Only the most literal patterns count: `/notifications/read` is that route's path,
    /// not an id for `/notifications/{id}` (whose handler would refuse it as no id).
    fn allowed(&self, path: &str) -> Option<(Api, Vec<Method>)> {
        let dynamic = |def: &ResourceDef| def.pattern().map_or(0, |p| p.matches('{').count());
        let fewest = self
            .routes
            .iter()
            .filter(|(def, _, _)| def.is_match(path))
            .map(|(def, _, _)| dynamic(def))
            .min()?;
        let mut api = None;
        let mut methods: Vec<Method> = Vec::new();
        for (def, method, owner) in &self.routes {
            if def.is_match(path) && dynamic(def) == fewest {
                api.get_or_insert(*owner);
                if !methods.contains(method) {
                    methods.push(method.clone());
                }
            }
        }
        api.map(|api| (api, methods))
    }
}

/// The default service: 405 with `Allow` for a known path, 404 otherwise.
pub async fn fallback(req: HttpRequest, table: web::Data<MethodTable>) -> HttpResponse {
    // A route for this very method that did not take the path (an id no route pattern
    // reads) names nothing: 404, as the route's handler would.
    let found = table.allowed(req.path()).filter(|(_, methods)| !methods.contains(req.method()));
    let Some((api, methods)) = found else {
        return ApiError::not_found(format!("no route for {} {}", req.method(), req.path()))
            .error_response();
    };
    let allow = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    let method = req.method().as_str();
    match api {
        Api::V1 => {
            let mut response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                format!("{} does not take {method}; it takes {allow}", req.path()),
            )
            .error_response();
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        Api::Seed(Seed::ReferralApi) => {
            DrfError::method_not_allowed(&DrfTexts::REFERRAL_API, method, allow).error_response()
        }
        Api::Seed(Seed::ConnectHub) => {
            DrfError::method_not_allowed(&DrfTexts::CONNECT_HUB, method, allow).error_response()
        }
        Api::Seed(Seed::MemberInvitation) => {
            SpringError::method_not_allowed(allow).error_response()
        }
    }
}
