//! Where an api flow that runs as its caller reads and writes: through this
//! service layer with the caller's rights (its viewer for `get_record`, its
//! write guard for every write), so a flow can do nothing its caller could
//! not do by hand. Each write's idempotency key is scoped to the caller as
//! any other write's is.

use commands::process::flows::{FlowHost, HostError};
use domain::query::{parse_filter, Query, SortNode, SortOrder};
use domain::ErrorCode;
use serde_json::{Map, Value as Json};

use super::caller::Caller;
use super::writes::{self, Command};
use crate::app::System;
use crate::error::ApiError;

pub struct CallerHost<'a> {
    pub system: &'a System,
    pub caller: &'a Caller,
}

fn host_error(error: ApiError) -> HostError {
    match error.code {
        ErrorCode::ServiceUnavailable | ErrorCode::DatabaseError | ErrorCode::Timeout | ErrorCode::InternalError => HostError::Unavailable(error.message),
        _ => HostError::Refused(format!("{}: {}", error.code.as_str(), error.message)),
    }
}

#[async_trait::async_trait]
impl FlowHost for CallerHost<'_> {
    fn outbound(&self) -> &commands::process::Outbound {
        &self.system.outbound
    }

    async fn find(&self, object: &str, filter: &Map<String, Json>, limit: usize) -> Result<Vec<Json>, HostError> {
        let mut query = Query::new(object);
        if !filter.is_empty() {
            query.filter = Some(parse_filter(&Json::Object(filter.clone())).map_err(|e| HostError::Refused(e.to_string()))?);
        }
        query.order_by = vec![SortNode { field: "id".into(), order: SortOrder::Asc }];
        query.limit = Some(limit as u64);
        query.count = false;
        let read = super::data::query(self.system, self.caller, None, query, None).await.map_err(host_error)?;
        Ok(read.output.records.iter().map(|r| domain::value::record_to_json(r)).collect())
    }

    async fn create(&self, object: &str, data: Map<String, Json>, key: String) -> Result<String, HostError> {
        let command = Command::Create { object: object.to_string(), id: None, data };
        let outcome = writes::execute(self.system, self.caller, Some(format!("$flow/{key}")), command).await.map_err(host_error)?;
        Ok(outcome.id)
    }

    async fn update(&self, object: &str, id: &str, patch: Map<String, Json>, key: String) -> Result<(), HostError> {
        let command = Command::Update { object: object.to_string(), id: id.to_string(), patch, expected_version: None };
        writes::execute(self.system, self.caller, Some(format!("$flow/{key}")), command).await.map(|_| ()).map_err(host_error)
    }

    async fn delete(&self, object: &str, id: &str, key: String) -> Result<(), HostError> {
        let command = Command::Delete { object: object.to_string(), id: id.to_string(), expected_version: None };
        writes::execute(self.system, self.caller, Some(format!("$flow/{key}")), command).await.map(|_| ()).map_err(host_error)
    }
}
