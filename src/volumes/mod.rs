//! Named volumes, bind mounts and tmpfs. Arrives with its issue.
