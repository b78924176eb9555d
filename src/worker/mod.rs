//! The Web Worker side: the only code that touches Blob / FileReaderSync.
