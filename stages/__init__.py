"""One thin command per DVC stage: parse paths, load params, call the library, save."""
