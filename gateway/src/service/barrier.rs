//! The read barrier: a read sees every write acknowledged on this node before
//! it started (the store's head then), and at least a position the client
//! names (`X-Min-Position`, from another node). Writes answer as soon as they
//! are durable; reads do the waiting, which is none when the model keeps up.

use domain::ErrorCode;
use projections::ProjectionHandle;

use crate::app::System;
use crate::error::ApiError;

/// The barrier on the query model.
pub async fn read_barrier(system: &System, min: Option<u64>) -> Result<(), ApiError> {
    barrier_on(system, &system.query, min).await
}

/// The barrier on a given projection.
pub async fn barrier_on(system: &System, projection: &ProjectionHandle, min: Option<u64>) -> Result<(), ApiError> {
    let head = system.commands.store().acknowledged();
    let position = head.max(min.unwrap_or(0));
    if projection.wait_for(position, system.read_wait).await {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Timeout, format!("the {} read model has not reached position {position} yet; retry", projection.name())))
    }
}

/// Waits (bounded) until the query model has applied `position`.
pub async fn wait_for(system: &System, position: u64) -> Result<(), ApiError> {
    if system.query.wait_for(position, system.read_wait).await {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Timeout, format!("the read model has not reached position {position} yet; retry")))
    }
}

/// The position the query model has reached (answers say what they read).
pub fn reached(system: &System) -> u64 {
    system.query.checkpoint()
}

/// The barrier on the query model and on the realtime hub (GraphQL: queries
/// and the schema of the metadata as of this node's acknowledged writes).
pub async fn read_and_realtime_barrier(system: &System, min: Option<u64>) -> Result<(), ApiError> {
    read_barrier(system, min).await?;
    barrier_on(system, &system.realtime_handle, min).await
}
