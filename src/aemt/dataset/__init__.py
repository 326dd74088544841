"""Stage 1, what comes in: label files (`labels`), the clip manifest (`manifest`, rule and command
`manifest`) and the generated demo dataset (`demo`, rule `demo_data`, command `demo-data`)."""
