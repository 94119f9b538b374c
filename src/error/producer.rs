//! Errors of idempotent appends: a batch whose producer id, epoch or sequence the partition refuses.
//! Defined with the base error so that the log and every protocol above it share one set; each
//! variant names the Kafka error code a Kafka client expects for it ([`ProducerError::kafka_code`]).

/// Why an idempotent append was refused. Converges into [`crate::Error::Producer`]. Nothing of the
/// batch was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// The batch's base sequence does not follow the last one this partition has from that producer
    /// and epoch (a batch was lost in between, or a retry of a batch older than the ones kept).
    #[error("out-of-order sequence from producer {producer_id} (epoch {epoch}): expected base sequence {expected}, found {found}")]
    OutOfOrderSequence { producer_id: i64, epoch: i16, expected: i32, found: i32 },

    /// The batch's epoch is older than one this partition has seen from that producer: a newer
    /// instance of the producer fenced this one.
    #[error(
        "producer {producer_id} is fenced: epoch {found} is older than the epoch {current} this partition has seen"
    )]
    InvalidProducerEpoch { producer_id: i64, current: i16, found: i16 },

    /// A producer id, epoch or sequence that no producer can send (negative, or half of one).
    #[error("invalid producer fields: {0}")]
    InvalidProducerBatch(String),
}

impl ProducerError {
    /// The Kafka protocol's error code for this error: `OUT_OF_ORDER_SEQUENCE_NUMBER` (45),
    /// `INVALID_PRODUCER_EPOCH` (47) or `INVALID_RECORD` (87).
    pub fn kafka_code(&self) -> i16 {
        match self {
            ProducerError::OutOfOrderSequence { .. } => 45,
            ProducerError::InvalidProducerEpoch { .. } => 47,
            ProducerError::InvalidProducerBatch(_) => 87,
        }
    }

    /// A stable name for this error (the HTTP API's `error_code`).
    pub fn name(&self) -> &'static str {
        match self {
            ProducerError::OutOfOrderSequence { .. } => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            ProducerError::InvalidProducerEpoch { .. } => "INVALID_PRODUCER_EPOCH",
            ProducerError::InvalidProducerBatch(_) => "INVALID_PRODUCER_BATCH",
        }
    }
}
