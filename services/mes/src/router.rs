//! Routes tag reads and writes to the adapter that serves each tag.

use async_trait::async_trait;
use chrono::Utc;
use remine_domain::ports::{TagError, TagIo};
use remine_domain::{BadReason, Quality, TagInfo, TagName, TagReading, TagValue};
use std::collections::HashMap;
use std::sync::Arc;

/// All tag sources of a plant behind one [`TagIo`]. Tag names are unique
/// across sources; [`PlantIo::new`] refuses a name served twice.
#[derive(Debug, Clone)]
pub struct PlantIo {
    sources: Vec<Arc<dyn TagIo>>,
    owner: HashMap<TagName, usize>,
    catalogue: Vec<TagInfo>,
}

impl PlantIo {
    pub fn new(sources: Vec<Arc<dyn TagIo>>) -> Result<PlantIo, TagError> {
        let mut owner = HashMap::new();
        let mut catalogue = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            for info in s.catalogue() {
                if owner.insert(info.name.clone(), i).is_some() {
                    return Err(TagError::Failed {
                        tag: info.name.clone(),
                        why: "the tag is served by two adapters".into(),
                    });
                }
                catalogue.push(info);
            }
        }
        Ok(PlantIo {
            sources,
            owner,
            catalogue,
        })
    }

    pub fn info(&self, tag: &TagName) -> Option<&TagInfo> {
        self.catalogue.iter().find(|i| &i.name == tag)
    }

    /// Every tag name, in catalogue order.
    pub fn names(&self) -> Vec<TagName> {
        self.catalogue.iter().map(|i| i.name.clone()).collect()
    }
}

#[async_trait]
impl TagIo for PlantIo {
    fn catalogue(&self) -> Vec<TagInfo> {
        self.catalogue.clone()
    }

    async fn read(&self, tags: &[TagName]) -> Vec<TagReading> {
        // Group by source, read each group once, put answers back in order.
        let mut groups: HashMap<usize, Vec<(usize, TagName)>> = HashMap::new();
        let mut out: Vec<Option<TagReading>> = vec![None; tags.len()];
        for (pos, t) in tags.iter().enumerate() {
            match self.owner.get(t) {
                Some(src) => groups.entry(*src).or_default().push((pos, t.clone())),
                None => {
                    out[pos] = Some(TagReading {
                        tag: t.clone(),
                        value: None,
                        quality: Quality::Bad(BadReason::ConfigurationError("unknown tag".into())),
                        source_time: None,
                        server_time: Utc::now(),
                    })
                }
            }
        }
        for (src, items) in groups {
            let names: Vec<TagName> = items.iter().map(|(_, t)| t.clone()).collect();
            let readings = self.sources[src].read(&names).await;
            for ((pos, _), r) in items.into_iter().zip(readings) {
                out[pos] = Some(r);
            }
        }
        out.into_iter()
            .zip(tags)
            .map(|(r, t)| {
                r.unwrap_or_else(|| TagReading {
                    tag: t.clone(),
                    value: None,
                    quality: Quality::Bad(BadReason::CommunicationError(
                        "the adapter returned no reading".into(),
                    )),
                    source_time: None,
                    server_time: Utc::now(),
                })
            })
            .collect()
    }

    async fn write(&self, tag: &TagName, value: TagValue) -> Result<(), TagError> {
        match self.owner.get(tag) {
            Some(src) => self.sources[*src].write(tag, value).await,
            None => Err(TagError::UnknownTag(tag.clone())),
        }
    }
}
