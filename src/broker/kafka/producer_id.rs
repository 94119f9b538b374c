//! InitProducerId (key 22), v0-1: a new producer id (epoch 0) for an idempotent producer, from
//! the store's durable allocation ([`Store::init_producer_id`](crate::Store::init_producer_id)):
//! never one the data directory gave before, also across crashes. Transactional ids are refused
//! (transactions are not supported).

use super::header::key;
use super::wire::{Reader, Result, Writer};
use super::{blocking, code, error_code, Context};

pub(crate) const SUPPORTED: &[(i16, i16, i16)] = &[(key::INIT_PRODUCER_ID, 0, 1)];

/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED: what a producer with a transactional id is told.
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;

pub async fn handle(ctx: &Context, _version: i16, r: &mut Reader) -> Result<Writer> {
    let transactional_id = r.nullable_string("transactional_id")?;
    r.i32("transaction_timeout_ms")?;
    let (error, id, epoch) = if transactional_id.is_some() {
        (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1)
    } else {
        let store = ctx.store.clone();
        match blocking(move || store.init_producer_id()).await {
            Ok((id, epoch)) => (code::NONE, id, epoch),
            Err(e) => (error_code(&e), -1, -1),
        }
    };
    let mut w = Writer::new();
    w.i32(0).i16(error).i64(id).i16(epoch);
    Ok(w)
}
