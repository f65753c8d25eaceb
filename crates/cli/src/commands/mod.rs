pub mod bulk;
pub mod create_data_key;
pub mod decrypt;
pub mod encrypt;
pub mod inspect;
pub mod s3ec;
