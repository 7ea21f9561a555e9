//! Images of the state machine: the stream format (`stream`), consistent
//! views of a store to make them from (`view`), where their bytes live
//! (`dir`), and a server's images on both sides of a snapshot transfer
//! (`images`).

pub mod dir;
pub mod images;
pub mod stream;
pub mod view;

pub use dir::{FileDir, ImageDir, MemoryDir};
pub use images::{Images, Restored};
pub use stream::{
    ImageHeader, ImageRecord, StreamDecoder, StreamWriter, read_image, read_raw_records,
    read_records, write_image,
};
pub use view::{ImageView, RawRecord, write_view};
