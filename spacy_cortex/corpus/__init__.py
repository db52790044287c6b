"""The public raw corpus (corpus/raw): its formats' readers (`readers`) and each set declared
once with its files, splits and EVAL splits (`registry`). Imports no spaCy, thinc or torch."""
