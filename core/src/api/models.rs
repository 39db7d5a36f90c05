//! `GET /v1/models` answers.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ModelList<'a> {
    pub object: &'static str,
    pub data: Vec<ModelEntry<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ModelEntry<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'a str,
}

impl<'a> ModelEntry<'a> {
    pub fn new(id: &'a str, owned_by: &'a str) -> Self {
        ModelEntry {
            id,
            object: "model",
            created: 0,
            owned_by,
        }
    }
}

impl<'a> ModelList<'a> {
    pub fn new(data: Vec<ModelEntry<'a>>) -> Self {
        ModelList {
            object: "list",
            data,
        }
    }
}
