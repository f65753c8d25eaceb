//! Deleting objects as `aws s3 rm` does, keeping the AWS S3 Encryption
//! Client's pairs whole: an object's instruction file (`KEY.instruction`,
//! its envelope) is deleted with it, after it (the object needs the file
//! while it exists), and an instruction file whose object stays is kept
//! (deleting it would leave that object undecryptable). Which objects are
//! instruction files is read, not guessed from names
//! ([`crate::list::take_instruction_files`]): a user's own object named
//! `KEY.instruction` is an object like any other.
//!
//! ```
//! use atrest_transfer::remove::plan;
//!
//! // Listed: a, b and their instruction files.
//! let instruction_files = ["a.instruction", "b.instruction"].map(String::from);
//! // The filters took `a` and `b.instruction`, not `b`.
//! let removal = plan(&instruction_files, vec!["a".into(), "b.instruction".into()]);
//! assert_eq!(removal.objects, ["a"]);
//! assert_eq!(removal.instruction_files, ["a.instruction"]);
//! assert_eq!(removal.kept, ["b.instruction"]);
//! ```

use std::collections::HashSet;

use atrest_format::s3ec::INSTRUCTION_SUFFIX;

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

/// The removal of `selected` keys, where `instruction_files` are the
/// instruction files of listed objects: each goes with its object, taken
/// or not, and stays with an object that stays.
pub fn plan(instruction_files: &[String], selected: Vec<String>) -> Removal {
    let files: HashSet<&str> = instruction_files.iter().map(String::as_str).collect();
    let taken: HashSet<&str> = selected.iter().map(String::as_str).collect();
    let mut removal = Removal::default();
    for key in &selected {
        match key.strip_suffix(INSTRUCTION_SUFFIX) {
            Some(object) if files.contains(key.as_str()) => {
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
        .filter(|file| files.contains(file.as_str()))
        .collect();
    removal.objects.sort();
    removal.instruction_files.sort();
    removal.kept.sort();
    removal
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
            "notes",
            "notes.instruction",
        ]);
        // notes.instruction is a user's own object, not notes's envelope.
        let files = keys(&["a.instruction", "b.instruction"]);
        let all = plan(&files, listed.clone());
        assert_eq!(
            all.objects,
            keys(&[
                "a",
                "b",
                "dir/",
                "lone.instruction",
                "notes",
                "notes.instruction"
            ])
        );
        assert_eq!(
            all.instruction_files,
            keys(&["a.instruction", "b.instruction"])
        );
        assert!(all.kept.is_empty());

        // `--exclude '*.instruction'` still takes a's file along, and
        // leaves the user's own notes.instruction.
        let some = plan(&files, keys(&["a", "b.instruction", "notes"]));
        assert_eq!(some.objects, keys(&["a", "notes"]));
        assert_eq!(some.instruction_files, keys(&["a.instruction"]));
        assert_eq!(some.kept, keys(&["b.instruction"]));

        assert_eq!(plan(&files, Vec::new()), Removal::default());
    }
}
