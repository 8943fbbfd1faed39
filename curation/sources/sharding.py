"""How a source's files are split among a stage's ranks."""

from datatrove.data import DocumentsPipeline


class FilesByRank:
    """For a reader over ``self.paths`` with a ``read_file``: rank r of n reads every n-th file,
    after passing on what the readers before it in the pipeline yielded."""

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for path in self.paths[rank::world_size]:
            self.stat_update("input_files")
            yield from self.read_file(path)
