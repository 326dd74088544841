"""Stage 3, aligned tensors (rule and command `align`): `bins` pools one clip's features to a fixed
length, `split` writes the tensors of one split, `mmsa` converts MMSA feature pickles to and from the same
layout (rule `import_mmsa`, commands `import-mmsa` / `export-mmsa`)."""
