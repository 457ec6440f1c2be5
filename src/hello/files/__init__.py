"""Static files: ``sources`` loads the bundled site and reads ``--static`` directories safely;
``serve`` answers requests for them (validators, ranges, precompressed variants)."""
