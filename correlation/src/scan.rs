//! The one validating pass over a JSON object behind [`crate::json::scan_object`] and
//! [`crate::extract::FieldSet::scan`].
//!
//! Every path of interest (the agent's roots and time fields, the tracked output paths,
//! the configured candidate fields) is a node in a trie keyed by dotted segments. Each
//! key of the object is walked down the trie segment by segment, so `"http.request.id"`,
//! `"http":{"request":{"id":…}}` and `"http":{"request.id":…}` reach the same node. The
//! parser descends only into objects whose node has children; every other value is
//! skipped with `IgnoredAny`, which serde_json walks without recursion or allocation.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::extract::{Hits, Target};
use crate::json::{NotAnObject, TimeValue, TopLevel, AGENT_PATHS, AGENT_ROOTS, TIME_FIELDS};

/// The bit for a segment's length in [`Node::child_lengths`].
fn length_bit(segment: &str) -> u64 {
    1 << segment.len().min(63)
}

/// A segment's first 7 bytes and its length in one word: equal tags mean equal names
/// for names of up to 7 bytes.
fn tag(segment: &str) -> u64 {
    let bytes = segment.as_bytes();
    let mut word = (bytes.len().min(255) as u64) << 56;
    for (at, byte) in bytes.iter().take(7).enumerate() {
        word |= u64::from(*byte) << (8 * at);
    }
    word
}

/// Where a tag starts probing in an index of `mask + 1` slots (Fibonacci hashing).
fn slot(tag: u64, mask: usize) -> usize {
    (tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
}

/// The trie's root: the object's top level.
pub(crate) const ROOT: u32 = 0;

/// The deepest configured path, in segments (guards recursion while descending).
pub(crate) const MAX_DEPTH: usize = 8;

/// Paths of interest, by dotted segment.
#[derive(Debug, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

/// One path prefix.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// Next segments: [`tag`] of the name, the name, the node.
    children: Vec<(u64, Box<str>, u32)>,
    /// Bit `n` set when a child's name is `n` bytes long (63 for any longer): most keys
    /// of a record match no child, and this rejects them without comparing text.
    child_lengths: u64,
    /// For nodes with many children (the top level): an open-addressing table of
    /// `children` positions + 1 by [`tag`], 0 for empty, at most a quarter full.
    index: Vec<u32>,
    /// What a value found here is for.
    pub(crate) targets: Vec<Target>,
    /// Index in [`TIME_FIELDS`] (top level only).
    pub(crate) time_field: Option<u8>,
    /// Index in [`AGENT_ROOTS`] (top level only).
    pub(crate) agent_root: Option<u8>,
    /// [`AGENT_PATHS`] bits of paths that end here.
    pub(crate) occupies: u32,
    /// [`AGENT_PATHS`] bits of paths that pass through here: a non-object here blocks them.
    pub(crate) blocks: u32,
}

impl Trie {
    /// The agent's own paths: [`TIME_FIELDS`], [`AGENT_ROOTS`] and [`AGENT_PATHS`].
    pub(crate) fn agent() -> Trie {
        let mut trie = Trie {
            nodes: vec![Node::default()],
        };
        for (index, name) in TIME_FIELDS.iter().enumerate() {
            let node = trie.insert(name);
            trie.nodes[node as usize].time_field = Some(index as u8);
        }
        for (index, name) in AGENT_ROOTS.iter().enumerate() {
            let node = trie.insert(name);
            trie.nodes[node as usize].agent_root = Some(index as u8);
        }
        for (index, path) in AGENT_PATHS.iter().enumerate() {
            let bit = 1u32 << index;
            let mut node = ROOT;
            let mut segments = path.split('.').peekable();
            while let Some(segment) = segments.next() {
                node = trie.child_or_insert(node, segment);
                if segments.peek().is_some() {
                    trie.nodes[node as usize].blocks |= bit;
                } else {
                    trie.nodes[node as usize].occupies |= bit;
                }
            }
        }
        trie
    }

    /// The node for a dotted path, created as needed.
    pub(crate) fn insert(&mut self, path: &str) -> u32 {
        path.split('.')
            .fold(ROOT, |node, segment| self.child_or_insert(node, segment))
    }

    fn child_or_insert(&mut self, node: u32, segment: &str) -> u32 {
        if let Some(id) = self.child(node, segment) {
            return id;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node::default());
        let parent = &mut self.nodes[node as usize];
        parent.children.push((tag(segment), segment.into(), id));
        parent.child_lengths |= length_bit(segment);
        if parent.children.len() > 4 {
            let mut index = vec![0u32; (parent.children.len() * 4).next_power_of_two()];
            let mask = index.len() - 1;
            for (position, (tag, _, _)) in parent.children.iter().enumerate() {
                let mut at = slot(*tag, mask);
                while index[at] != 0 {
                    at = (at + 1) & mask;
                }
                index[at] = position as u32 + 1;
            }
            parent.index = index;
        }
        id
    }

    /// The child of `node` named `segment`.
    fn child(&self, node: u32, segment: &str) -> Option<u32> {
        let node = &self.nodes[node as usize];
        if node.child_lengths & length_bit(segment) == 0 {
            return None;
        }
        // Comparing tags settles names of up to 7 bytes without calling memcmp.
        let wanted = tag(segment);
        let matches = |(tag, name, _): &(u64, Box<str>, u32)| {
            *tag == wanted && (segment.len() <= 7 || **name == *segment)
        };
        if node.index.is_empty() {
            return node
                .children
                .iter()
                .find(|child| matches(child))
                .map(|(_, _, id)| *id);
        }
        let mask = node.index.len() - 1;
        let mut at = slot(wanted, mask);
        loop {
            let position = node.index[at];
            if position == 0 {
                return None;
            }
            let child = &node.children[position as usize - 1];
            if matches(child) {
                return Some(child.2);
            }
            at = (at + 1) & mask;
        }
    }

    /// The node a key leads to from `from`; a key with dots walks one segment per part.
    pub(crate) fn walk(&self, from: u32, key: &str) -> Option<u32> {
        let mut node = from;
        let mut rest = key;
        loop {
            // Keys are short: a plain loop beats memchr's setup here.
            match rest.bytes().position(|byte| byte == b'.') {
                None => return self.child(node, rest),
                Some(dot) => {
                    node = self.child(node, &rest[..dot])?;
                    rest = &rest[dot + 1..];
                }
            }
        }
    }

    pub(crate) fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    pub(crate) fn node_mut(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[id as usize]
    }
}

/// A JSON scalar, strings borrowed from the line when they need no unescaping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'de> {
    Str(Cow<'de, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool,
    Null,
}

/// What was found at a node: whether it was an object, and the scalar when it was one
/// and the node wants it.
#[derive(Debug)]
pub(crate) struct Seen<'de> {
    pub(crate) object: bool,
    pub(crate) scalar: Option<Scalar<'de>>,
}

impl<'de> Seen<'de> {
    const OBJECT: Seen<'static> = Seen {
        object: true,
        scalar: None,
    };
    const OTHER: Seen<'static> = Seen {
        object: false,
        scalar: None,
    };

    fn scalar(scalar: Scalar<'de>) -> Seen<'de> {
        Seen {
            object: false,
            scalar: Some(scalar),
        }
    }

    /// The value as a record time.
    pub(crate) fn time_value(&self) -> TimeValue<'de> {
        match &self.scalar {
            Some(Scalar::Str(text)) => TimeValue::Text(text.clone()),
            Some(Scalar::U64(number)) => TimeValue::Number(*number as f64),
            Some(Scalar::I64(number)) => TimeValue::Number(*number as f64),
            Some(Scalar::F64(number)) => TimeValue::Number(*number),
            _ => TimeValue::Other,
        }
    }
}

/// Validates `line` as one JSON object and records what the trie asks for into `hits`.
pub(crate) fn scan<'a>(
    line: &'a [u8],
    trie: &Trie,
    hits: &mut Hits<'a>,
) -> Result<TopLevel<'a>, NotAnObject> {
    let text = std::str::from_utf8(line).map_err(|_| NotAnObject::InvalidUtf8)?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let top = match de::Deserializer::deserialize_any(&mut deserializer, TopVisitor { trie, hits })
    {
        Ok(Some(top)) => top,
        Ok(None) => return Err(NotAnObject::NotObject),
        Err(_) => return Err(NotAnObject::InvalidJson),
    };
    deserializer.end().map_err(|_| NotAnObject::InvalidJson)?;
    Ok(top)
}

struct TopVisitor<'s, 'de> {
    trie: &'s Trie,
    hits: &'s mut Hits<'de>,
}

impl<'de> Visitor<'de> for TopVisitor<'_, 'de> {
    type Value = Option<TopLevel<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut top = TopLevel {
            empty: true,
            ..TopLevel::default()
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            top.empty = false;
            let Some(id) = self.trie.walk(ROOT, &key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let seen = map.next_value_seed(NodeSeed {
                trie: self.trie,
                node: id,
                depth: 1,
                hits: &mut *self.hits,
            })?;
            let node = self.trie.node(id);
            if let Some(index) = node.time_field {
                top.times.push((usize::from(index), seen.time_value()));
            }
            if let Some(index) = node.agent_root {
                top.roots[usize::from(index)] = Some(seen.object);
            }
            self.hits.record(node, &seen);
        }
        top.occupied = self.hits.occupied;
        Ok(Some(top))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Reads the value at one trie node: descends into an object when the node has
/// children, keeps a scalar when the node has a use for it, skips everything else.
struct NodeSeed<'s, 'de> {
    trie: &'s Trie,
    node: u32,
    depth: usize,
    hits: &'s mut Hits<'de>,
}

impl NodeSeed<'_, '_> {
    fn wants_scalar(&self) -> bool {
        let node = self.trie.node(self.node);
        !node.targets.is_empty() || node.time_field.is_some()
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = Seen<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Seen<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = Seen<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen<'de>, A::Error> {
        let descend = !self.trie.node(self.node).children.is_empty() && self.depth < MAX_DEPTH;
        if !descend {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Seen::OBJECT);
        }
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let Some(id) = self.trie.walk(self.node, &key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let seen = map.next_value_seed(NodeSeed {
                trie: self.trie,
                node: id,
                depth: self.depth + 1,
                hits: &mut *self.hits,
            })?;
            self.hits.record(self.trie.node(id), &seen);
        }
        Ok(Seen::OBJECT)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Seen<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Seen::OTHER)
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Seen<'de>, E> {
        Ok(Seen::scalar(Scalar::Str(Cow::Borrowed(value))))
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Seen<'de>, E> {
        // Only escaped strings arrive here; copy them only when they are wanted.
        if self.wants_scalar() {
            Ok(Seen::scalar(Scalar::Str(Cow::Owned(value.to_owned()))))
        } else {
            Ok(Seen::OTHER)
        }
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Seen<'de>, E> {
        Ok(Seen::scalar(Scalar::Bool))
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Seen<'de>, E> {
        Ok(Seen::scalar(Scalar::I64(value)))
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Seen<'de>, E> {
        Ok(Seen::scalar(Scalar::U64(value)))
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Seen<'de>, E> {
        Ok(Seen::scalar(Scalar::F64(value)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Seen<'de>, E> {
        Ok(Seen::scalar(Scalar::Null))
    }
}
