//! RecordBatch v2 decoding and encoding.
