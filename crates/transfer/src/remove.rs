//! Deleting objects as `aws s3 rm` does, keeping the AWS S3 Encryption
//! Client's pairs whole: an object's instruction file (`KEY.instruction`,
//! its envelope) is deleted with it, after it (the object needs the file
//! while it exists), and an instruction file whose object stays is kept
//! (deleting it would leave that object undecryptable).
//!
//! ```
//! use atrest_transfer::remove::plan;
//!
//! let listed = ["a", "a.instruction", "b", "b.instruction"].map(String::from);
//! // The filters took `a` and `b.instruction`, not `b`.
//! let removal = plan(&listed, vec!["a".into(), "b.instruction".into()]);
//! assert_eq!(removal.objects, ["a"]);
//! assert_eq!(removal.instruction_files, ["a.instruction"]);
//! assert_eq!(removal.kept, ["b.instruction"]);
//! ```

use std::collections::HashSet;

use atrest_format::s3ec::INSTRUCTION_SUFFIX;
use atrest_s3::{S3Error, S3Uri};

/// What deleting some of the keys under a prefix deletes, and keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removal {
    /// The keys to delete first (objects, folder markers, anything), sorted.
    pub objects: Vec<String>,
    /// The instruction files of those objects, to delete once their
    /// objects are gone, sorted.
    pub instruction_files: Vec<String>,
    /// Instruction files taken by the selection whose objects stay: kept.
    pub kept: Vec<String>,
}

/// The removal of `selected` among `listed` (every key under the prefix):
/// each instruction file goes with its object, taken or not, and stays
/// with an object that stays. A `KEY.instruction` whose `KEY` is not listed
/// is an object like any other.
pub fn plan(listed: &[String], selected: Vec<String>) -> Removal {
    let listed: HashSet<&str> = listed.iter().map(String::as_str).collect();
    let taken: HashSet<&str> = selected.iter().map(String::as_str).collect();
    let mut removal = Removal::default();
    for key in &selected {
        match key.strip_suffix(INSTRUCTION_SUFFIX) {
            Some(object) if listed.contains(object) => {
                if !taken.contains(object) {
                    removal.kept.push(key.clone());
                }
            }
            _ => removal.objects.push(key.clone()),
        }
    }
    removal.instruction_files = removal
        .objects
        .iter()
        .map(|key| format!("{key}{INSTRUCTION_SUFFIX}"))
        .filter(|file| listed.contains(file.as_str()))
        .collect();
    removal.objects.sort();
    removal.instruction_files.sort();
    removal.kept.sort();
    removal
}

/// The instruction file of the object at `uri`, if there is one
/// (`KEY.instruction` exists): one HeadObject.
pub async fn instruction_file_of(
    s3: &aws_sdk_s3::Client,
    uri: &S3Uri,
) -> Result<Option<S3Uri>, S3Error> {
    let file = uri.with_key(format!("{}{INSTRUCTION_SUFFIX}", uri.key()));
    match atrest_s3::head(s3, &file).await {
        Ok(_) => Ok(Some(file)),
        Err(S3Error::NoSuchKey { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn instruction_files_go_with_their_objects_and_stay_with_the_rest() {
        let listed = keys(&[
            "a",
            "a.instruction",
            "b",
            "b.instruction",
            "lone.instruction",
            "dir/",
        ]);
        let all = plan(&listed, listed.clone());
        assert_eq!(all.objects, keys(&["a", "b", "dir/", "lone.instruction"]));
        assert_eq!(
            all.instruction_files,
            keys(&["a.instruction", "b.instruction"])
        );
        assert!(all.kept.is_empty());

        // `--exclude '*.instruction'` still takes a's file along.
        let some = plan(&listed, keys(&["a", "b.instruction"]));
        assert_eq!(some.objects, keys(&["a"]));
        assert_eq!(some.instruction_files, keys(&["a.instruction"]));
        assert_eq!(some.kept, keys(&["b.instruction"]));

        assert_eq!(plan(&listed, Vec::new()), Removal::default());
    }
}
